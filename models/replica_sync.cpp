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

void sum_allreduce(Communicator& comm, float* x, float* base, int64_t n, int threads) {
  const float others = static_cast<float>(comm.size() - 1);
  for (int64_t from = 0; from < n; from += kDeltaPiece) {
    const int64_t m = std::min(kDeltaPiece, n - from);
    comm.allreduce(Tensor::of(x + from, m), ReduceOp::kSum);
    float* __restrict xp = x + from;
    float* __restrict bp = base + from;
#pragma omp parallel for simd num_threads(threads) if (threads > 1)
    for (int64_t i = 0; i < m; ++i) {
      xp[i] -= others * bp[i];
      bp[i] = xp[i];
    }
  }
}

void sum_allreduce_rows(Communicator& comm, float* x, float* base, int64_t D, const std::vector<int32_t>& rows,
                        std::vector<float>& scratch) {
  const float others = static_cast<float>(comm.size() - 1);
  const size_t per = static_cast<size_t>(std::max<int64_t>(1, kDeltaPiece / D));   // rows per piece
  scratch.resize(per * static_cast<size_t>(D));
  for (size_t from = 0; from < rows.size(); from += per) {
    const size_t m = std::min(per, rows.size() - from);
    for (size_t q = 0; q < m; ++q)
      std::copy_n(x + static_cast<int64_t>(rows[from + q]) * D, D, scratch.data() + q * static_cast<size_t>(D));
    comm.allreduce(Tensor::of(scratch.data(), static_cast<int64_t>(m) * D), ReduceOp::kSum);
    for (size_t q = 0; q < m; ++q) {
      const float* __restrict s = scratch.data() + q * static_cast<size_t>(D);
      float* __restrict xr = x + static_cast<int64_t>(rows[from + q]) * D;
      float* __restrict br = base + static_cast<int64_t>(rows[from + q]) * D;
#pragma omp simd
      for (int64_t k = 0; k < D; ++k) {
        xr[k] = s[k] - others * br[k];
        br[k] = xr[k];
      }
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
