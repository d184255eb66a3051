#pragma once
// Whether every rank of the world can drive a GPU of its own (collective: every rank calls
// it, and every rank gets the same answer, so all skip alike and none waits in a
// collective for a rank that skipped).
#include <algorithm>

#include "core/device.h"
#include "core/tensor.h"
#include "dist/gpu_select.h"
#include "dist/mpi_communicator.h"

namespace loom::test {

inline bool one_gpu_per_rank(MpiCommunicator& world) {
  const LocalRank local = local_rank_of(world);
  int ok = cuda_device_count() >= local.size ? 1 : 0;
  world.allreduce(Tensor(&ok, {1}, DType::kI32), ReduceOp::kMin);
  return ok == 1;
}

}  // namespace loom::test

// Skips the current test visibly unless every rank has a GPU of its own.
#define LOOM_REQUIRE_GPU_PER_RANK(world)                                                          \
  do {                                                                                            \
    if (!::loom::test::one_gpu_per_rank(world))                                                   \
      LOOM_SKIP_NO_GPU("needs one GPU per rank: " + std::to_string((world).size()) +              \
                       " rank(s), " + std::to_string(::loom::cuda_device_count()) +               \
                       " GPU(s) visible on this node");                                           \
  } while (0)
