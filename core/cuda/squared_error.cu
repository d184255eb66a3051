// CUDA squared error (core/kernels.h), f32: a warp per row for the loss, an elementwise
// kernel for its gradient.
#include "core/cuda/device_math.cuh"
#include "core/cuda/kernel_support.h"
#include "core/kernels_cuda.h"

namespace loom::cuda {
namespace {
using namespace detail;

constexpr int kThreads = 256;

// loss[n] = ½ Σ_k (pred[n, k] − target[n, k])²: one warp per row.
__global__ void squared_error_rows(float* loss, const float* pred, const float* target, int64_t N,
                                   int64_t K) {
  const int64_t n = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (n >= N) return;
  float s = 0.0f;
  for (int64_t k = lane; k < K; k += kWarp) {
    const float d = pred[n * K + k] - target[n * K + k];
    s += d * d;
  }
  s = warp_sum(s);
  if (lane == 0) loss[n] = 0.5f * s;
}

__global__ void difference(float* dpred, const float* pred, const float* target, int64_t count) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x)
    dpred[i] = pred[i] - target[i];
}

}  // namespace

void squared_error_forward(Tensor loss, Tensor pred, Tensor target) {
  KernelCall call("squared_error_forward", {{"loss", loss}, {"pred", pred}, {"target", target}});
  const int64_t N = rows_of(pred), K = last_dim(pred);
  if (N == 0) return;
  const int64_t threads = N * kWarp;
  squared_error_rows<<<unsigned((threads + kThreads - 1) / kThreads), kThreads, 0,
                       call.stream()>>>(loss.f32(), pred.f32(), target.f32(), N, K);
  LOOM_CUDA_CHECK_LAUNCH("squared_error_rows");
}

void squared_error_backward(Tensor dpred, Tensor pred, Tensor target) {
  KernelCall call("squared_error_backward",
                  {{"dpred", dpred}, {"pred", pred}, {"target", target}});
  const int64_t count = pred.numel();
  if (count == 0) return;
  difference<<<blocks_for(count, kThreads), kThreads, 0, call.stream()>>>(
      dpred.f32(), pred.f32(), target.f32(), count);
  LOOM_CUDA_CHECK_LAUNCH("difference");
}

}  // namespace loom::cuda
