// delta_allreduce (replica_sync.h, Note [Fused delta sync]).
#include "models/replica_sync.h"

#include <algorithm>

#include "core/tensor.h"
#include "dist/communicator.h"

namespace loom {

void delta_allreduce(Communicator& comm, float* x, float* base, int64_t n, int threads) {
  for (int64_t from = 0; from < n; from += kDeltaPiece) {
    const int64_t m = std::min(kDeltaPiece, n - from);
    float* __restrict xp = x + from;
    float* __restrict bp = base + from;
#pragma omp parallel for simd num_threads(threads) if (threads > 1)
    for (int64_t i = 0; i < m; ++i) xp[i] -= bp[i];
    comm.allreduce(Tensor::of(xp, m), ReduceOp::kSum);
#pragma omp parallel for simd num_threads(threads) if (threads > 1)
    for (int64_t i = 0; i < m; ++i) {
      xp[i] += bp[i];
      bp[i] = xp[i];
    }
  }
}

void average_allreduce(Communicator& comm, float* x, float* base, int64_t n, int threads) {
  for (int64_t from = 0; from < n; from += kDeltaPiece) {
    const int64_t m = std::min(kDeltaPiece, n - from);
    comm.allreduce(Tensor::of(x + from, m), ReduceOp::kAvg);
    const float* __restrict xp = x + from;
    float* __restrict bp = base + from;
#pragma omp parallel for simd num_threads(threads) if (threads > 1)
    for (int64_t i = 0; i < m; ++i) bp[i] = xp[i];
  }
}

}  // namespace loom
