// main() for MPI test binaries: brings up the world communicator, runs the tests on every
// rank, prints results from rank 0 only (a failure is printed by the rank that saw it),
// and makes the process fail if any rank failed.
#include <gtest/gtest.h>

#include "dist/mpi_communicator.h"
#include "core/log.h"
#include "tests/support/test_support.h"

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
  // Skips for a missing environment count for ctest only when no rank failed (Note [Skips
  // that fail under CI]): rank 0 speaks for all.
  int32_t skips = loom::test::environment_skips();
  world.allreduce(loom::Tensor::of(&skips, 1), loom::ReduceOp::kMax);
  loom::test::disable_environment_skip_marker_at_exit();
  if (any == 0 && world.rank() == 0) loom::test::print_environment_skip_marker(skips);
  loom::MpiCommunicator::shutdown_world();
  return any != 0 ? 1 : 0;
}
