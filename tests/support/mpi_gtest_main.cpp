// main() for MPI test binaries: brings up the world communicator, runs the tests on every
// rank, prints results from rank 0 only (a failure is printed by the rank that saw it),
// and makes the process fail if any rank failed.
#include <gtest/gtest.h>

#include "dist/mpi_communicator.h"
#include "core/log.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  loom::MpiCommunicator& world = loom::MpiCommunicator::init_world(&argc, &argv);
  if (world.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int failed = RUN_ALL_TESTS() != 0 ? 1 : 0;
  int32_t any = failed;
  world.allreduce(loom::Tensor::of(&any, 1), loom::ReduceOp::kMax);
  if (any != 0 && failed == 0 && world.rank() == 0)
    loom::log::error("test", "a test failed on another rank (see its output above)");
  loom::MpiCommunicator::shutdown_world();
  return any != 0 ? 1 : 0;
}
