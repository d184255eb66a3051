// CUDA fused softmax cross-entropy (core/kernels.h), f32, one block per row of logits:
//   forward:  m = max x, lse = m + log Σ e^(x − m), loss = lse − x[target]
//   backward: dlogits = (e^(x − lse) − onehot(target)) · scale, one pass with the saved lse
//             (each element is read before the same thread writes it, so dlogits may be
//             the logits' memory)
// Rows whose target is ignore_index get loss 0, lse 0 and a zero gradient. Targets are
// range-checked on the GPU before anything is written; an out-of-range target is a
// loom::Error naming the row (Note [Range checks on the GPU]).
// A block of 512 threads per row: V is large (GPT-2: 50257), the row is read twice in
// the forward (max, then sum; the second read hits L2) and once in the backward.
#include "core/cuda/device_math.cuh"
#include "core/cuda/kernel_support.h"
#include "core/kernels_cuda.h"

#include <string>

namespace loom::cuda {
namespace {
using namespace detail;

constexpr int kRowThreads = 512;
constexpr int kRowWarps = kRowThreads / kWarp;

// The block's reduction of v (sum or max); every thread gets the result.
template <bool kMax>
__device__ float block_reduce(float v, float* shared) {
  v = kMax ? warp_max(v) : warp_sum(v);
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  float r = lane < kRowWarps ? shared[lane] : (kMax ? -INFINITY : 0.0f);
  r = kMax ? warp_max(r) : warp_sum(r);
  __syncthreads();   // shared is reused by the next reduction
  return r;
}

__global__ void cross_entropy_rows(float* loss, float* lse, const float* logits,
                                   const int32_t* targets, int64_t V, int ignore_index) {
  __shared__ float shared[kRowWarps];
  const int64_t n = blockIdx.x;
  const int32_t y = targets[n];
  if (y == ignore_index) {   // uniform over the block
    if (threadIdx.x == 0) loss[n] = lse[n] = 0.0f;
    return;
  }
  const float* x = logits + n * V;
  float m = -INFINITY;
  for (int64_t v = threadIdx.x; v < V; v += kRowThreads) m = fmaxf(m, x[v]);
  m = block_reduce<true>(m, shared);
  float s = 0.0f;
  for (int64_t v = threadIdx.x; v < V; v += kRowThreads) s += expf(x[v] - m);
  s = block_reduce<false>(s, shared);
  if (threadIdx.x == 0) {
    const float l = m + logf(s);
    lse[n] = l;
    loss[n] = l - x[y];
  }
}

__global__ void cross_entropy_grad_rows(float* dlogits, const float* logits, const float* lse,
                                        const int32_t* targets, int64_t V, int ignore_index,
                                        float scale) {
  const int64_t n = blockIdx.x;
  const int32_t y = targets[n];
  float* d = dlogits + n * V;
  const float* x = logits + n * V;
  if (y == ignore_index) {
    for (int64_t v = threadIdx.x; v < V; v += kRowThreads) d[v] = 0.0f;
    return;
  }
  const float l = lse[n];
  for (int64_t v = threadIdx.x; v < V; v += kRowThreads)
    d[v] = (expf(x[v] - l) - (v == y ? 1.0f : 0.0f)) * scale;
}

void check_targets(const KernelCall& call, const Tensor& targets, int64_t V, int ignore_index) {
  const BadId bad = first_bad_id(call, targets.i32(), targets.numel(), V, ignore_index);
  if (bad.index < 0) return;
  throw Error(std::string(call.kernel()) + ": targets[" + std::to_string(bad.index) + "] = " +
              std::to_string(bad.value) + " is outside [0, " + std::to_string(V) +
              ") and is not ignore_index (" + std::to_string(ignore_index) + ")");
}

}  // namespace

void softmax_cross_entropy_forward(Tensor loss, Tensor lse, Tensor logits, Tensor targets,
                                   int ignore_index) {
  KernelCall call("softmax_cross_entropy_forward",
                  {{"loss", loss}, {"lse", lse}, {"logits", logits}, {"targets", targets}});
  const int64_t N = rows_of(logits), V = last_dim(logits);
  if (N == 0) return;
  check_targets(call, targets, V, ignore_index);
  cross_entropy_rows<<<unsigned(N), kRowThreads, 0, call.stream()>>>(
      loss.f32(), lse.f32(), logits.f32(), targets.i32(), V, ignore_index);
  LOOM_CUDA_CHECK_LAUNCH("cross_entropy_rows");
}

void softmax_cross_entropy_backward(Tensor dlogits, Tensor logits, Tensor lse, Tensor targets,
                                    int ignore_index, double scale) {
  KernelCall call("softmax_cross_entropy_backward", {{"dlogits", dlogits}, {"logits", logits},
                                                     {"lse", lse}, {"targets", targets}});
  const int64_t N = rows_of(logits), V = last_dim(logits);
  if (N == 0) return;
  check_targets(call, targets, V, ignore_index);
  cross_entropy_grad_rows<<<unsigned(N), kRowThreads, 0, call.stream()>>>(
      dlogits.f32(), logits.f32(), lse.f32(), targets.i32(), V, ignore_index, float(scale));
  LOOM_CUDA_CHECK_LAUNCH("cross_entropy_grad_rows");
}

}  // namespace loom::cuda
