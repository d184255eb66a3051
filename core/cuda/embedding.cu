// CUDA embedding (core/kernels.h), f32: out[b, t] = wte[tokens[b, t]] + wpe[t]
// (+ wse[segments[b, t]]). Ids are range-checked on the GPU before anything is written
// (Note [Range checks on the GPU] in core/cuda/kernel_support.h).
//
// Note [Deterministic embedding gradients on the GPU]
// dwte[id] sums dout over every position that holds id, and ids repeat. Float atomicAdd
// would be the fastest scatter, but the order of the additions then depends on timing, so
// a step's gradients - and a run's loss curve - would differ bit by bit from run to run,
// and could never equal the CPU reference exactly. loom chose determinism (as the CPU
// reference does, Note [Deterministic embedding gradients] in kernels_cpu_embedding.cpp)
// without a sort (no scratch: kernels allocate nothing):
//   dwte: thread (c, k) owns column c of every row whose id ≡ k (mod K). It walks all
//         positions in order and adds dout[n, c] only for the ids it owns, so every
//         dwte[id, c] is summed by one thread in position order - the CPU's order, hence
//         bitwise equal to the CPU reference. K = ceil(64k / C) partitions give ~64k
//         threads; each reads all N ids (broadcast within a warp, from cache) and does
//         ~N/K read-modify-writes.
//   dwpe: thread (t, c) adds dout[b, t, c] for b in order (row t is position t): the
//         CPU's order too.
//   dwse: segment tables are tiny (S = 2 for BERT), so the partitioned walk would leave
//         K = S partitions; each segment s is a deterministic column sum instead
//         (Note [Deterministic column sums]), S launches.
#include "core/cuda/device_math.cuh"
#include "core/cuda/kernel_support.h"
#include "core/kernels_cuda.h"

#include <string>

namespace loom::cuda {
namespace {
using namespace detail;

constexpr int kThreads = 256;
constexpr int64_t kWteThreads = 64 * 1024;   // Note [Deterministic embedding gradients on the GPU]
constexpr int64_t kMaxSegmentLaunches = 16;  // above this, dwse takes the partitioned walk

__global__ void embed(float* out, const int32_t* tokens, const int32_t* segments,
                      const float* wte, const float* wpe, const float* wse, int64_t N,
                      int64_t T, int64_t C) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < N * C;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = i / C, c = i % C;
    float v = wte[int64_t(tokens[n]) * C + c] + wpe[(n % T) * C + c];
    if (segments != nullptr) v += wse[int64_t(segments[n]) * C + c];
    out[i] = v;
  }
}

// table[ids[n], c] += dout[n, c] for the ids ≡ k (mod K) of thread (c, k), n in order.
__global__ void scatter_add_owned(float* table, const float* dout, const int32_t* ids,
                                  int64_t N, int64_t C, int64_t K) {
  const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= C * K) return;
  const int64_t k = i / C, c = i % C;
  for (int64_t n = 0; n < N; ++n) {
    const int64_t id = ids[n];
    if (id % K == k) table[id * C + c] += dout[n * C + c];
  }
}

// dwpe[t, c] += dout[b, t, c] for b in order, one addition at a time onto dwpe (the
// CPU's order, so the same bits).
__global__ void position_grad(float* dwpe, const float* dout, int64_t B, int64_t T, int64_t C) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < T * C;
       i += int64_t(gridDim.x) * blockDim.x) {
    float v = dwpe[i];
    for (int64_t b = 0; b < B; ++b) v += dout[b * T * C + i];
    dwpe[i] = v;
  }
}

// dout[n, c] where ids[n] == s, else 0 (the column-sum term of segment s).
struct SegmentTerm {
  const float* dout;
  const int32_t* ids;
  int32_t s;
  int64_t C;
  __device__ float operator()(int64_t n, int64_t c) const {
    return ids[n] == s ? dout[n * C + c] : 0.0f;
  }
};

// A loom::Error naming the first id outside [0, limit), as the CPU reference words it.
void check_ids(const KernelCall& call, const char* name, const Tensor& ids, int64_t limit,
               const char* table) {
  const int64_t T = ids.shape()[1];
  const BadId bad = first_bad_id(call, ids.i32(), ids.numel(), limit, kNoAllowedId);
  if (bad.index < 0) return;
  throw Error(std::string(call.kernel()) + ": " + name + "[" + std::to_string(bad.index / T) +
              ", " + std::to_string(bad.index % T) + "] = " + std::to_string(bad.value) +
              " is outside [0, " + std::to_string(limit) + "), the rows of " + table);
}

void scatter_partitioned(const KernelCall& call, float* table, int64_t rows, const float* dout,
                         const int32_t* ids, int64_t N, int64_t C) {
  int64_t K = (kWteThreads + C - 1) / C;
  if (K > rows) K = rows;
  if (K < 1) K = 1;
  scatter_add_owned<<<unsigned((C * K + kThreads - 1) / kThreads), kThreads, 0, call.stream()>>>(
      table, dout, ids, N, C, K);
  LOOM_CUDA_CHECK_LAUNCH("scatter_add_owned");
}

}  // namespace

void embedding_forward(Tensor out, Tensor tokens, Tensor segments, Tensor wte, Tensor wpe,
                       Tensor wse) {
  KernelCall call("embedding_forward", {{"out", out}, {"tokens", tokens}, {"segments", segments},
                                        {"wte", wte}, {"wpe", wpe}, {"wse", wse}});
  const int64_t B = tokens.shape()[0], T = tokens.shape()[1], C = wte.shape()[1];
  const int64_t N = B * T;
  if (N == 0 || C == 0) return;
  check_ids(call, "tokens", tokens, wte.shape()[0], "wte");
  if (present(segments)) check_ids(call, "segments", segments, wse.shape()[0], "wse");
  embed<<<blocks_for(N * C, kThreads), kThreads, 0, call.stream()>>>(
      out.f32(), tokens.i32(), present(segments) ? segments.i32() : nullptr, wte.f32(),
      wpe.f32(), present(wse) ? wse.f32() : nullptr, N, T, C);
  LOOM_CUDA_CHECK_LAUNCH("embed");
}

void embedding_backward(Tensor dwte, Tensor dwpe, Tensor dwse, Tensor dout, Tensor tokens,
                        Tensor segments) {
  KernelCall call("embedding_backward", {{"dwte", dwte}, {"dwpe", dwpe}, {"dwse", dwse},
                                         {"dout", dout}, {"tokens", tokens},
                                         {"segments", segments}});
  const int64_t B = tokens.shape()[0], T = tokens.shape()[1], C = dwte.shape()[1];
  const int64_t N = B * T;
  if (N == 0 || C == 0) return;
  check_ids(call, "tokens", tokens, dwte.shape()[0], "dwte");
  if (present(segments)) check_ids(call, "segments", segments, dwse.shape()[0], "dwse");
  scatter_partitioned(call, dwte.f32(), dwte.shape()[0], dout.f32(), tokens.i32(), N, C);
  position_grad<<<blocks_for(T * C, kThreads), kThreads, 0, call.stream()>>>(
      dwpe.f32(), dout.f32(), B, T, C);
  LOOM_CUDA_CHECK_LAUNCH("position_grad");
  if (!present(segments)) return;
  const int64_t S = dwse.shape()[0];
  if (S > kMaxSegmentLaunches) {
    scatter_partitioned(call, dwse.f32(), S, dout.f32(), segments.i32(), N, C);
    return;
  }
  for (int64_t s = 0; s < S; ++s) {
    accumulate_column_sums<<<column_sum_blocks(C), column_sum_threads(), 0, call.stream()>>>(
        dwse.f32() + s * C, N, C, SegmentTerm{dout.f32(), segments.i32(), int32_t(s), C});
    LOOM_CUDA_CHECK_LAUNCH("accumulate_column_sums");
  }
}

}  // namespace loom::cuda
