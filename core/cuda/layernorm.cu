// CUDA layernorm (core/kernels.h), f32, over the last dimension C - the CPU reference's
// formulas (core/kernels_cpu_layernorm.cpp): two-pass variance (biased), rstd = 1/√(var+eps);
// backward din = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂)) with g = dout ⊙ weight.
//
// Forward and din: one warp per row (warp-per-row reductions: butterfly shuffles, no shared
// memory, no __syncthreads). The row is read from global memory two or three times; for
// C <= a few thousand it stays in L1/L2 between the passes. dweight and dbias, sums over
// the rows, are deterministic column sums (Note [Deterministic column sums]).
#include "core/cuda/device_math.cuh"
#include "core/cuda/kernel_support.h"
#include "core/kernels_cuda.h"

namespace loom::cuda {
namespace {
using namespace detail;

constexpr int kThreads = 256;   // 8 rows per block

__global__ void layernorm_rows(float* out, float* mean, float* rstd, const float* in,
                               const float* weight, const float* bias, int64_t N, int64_t C,
                               float eps) {
  const int64_t n = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (n >= N) return;   // whole warps leave together: n is the same on every lane
  const float* x = in + n * C;
  float sum = 0.0f;
  for (int64_t c = lane; c < C; c += kWarp) sum += x[c];
  const float m = warp_sum(sum) / float(C);
  float sq = 0.0f;
  for (int64_t c = lane; c < C; c += kWarp) sq += (x[c] - m) * (x[c] - m);
  const float r = rsqrtf(warp_sum(sq) / float(C) + eps);
  float* o = out + n * C;
  for (int64_t c = lane; c < C; c += kWarp) {
    const float v = (x[c] - m) * r * weight[c];
    o[c] = bias != nullptr ? v + bias[c] : v;
  }
  if (lane == 0) {
    mean[n] = m;
    rstd[n] = r;
  }
}

__global__ void layernorm_din_rows(float* din, const float* dout, const float* in,
                                   const float* weight, const float* mean, const float* rstd,
                                   int64_t N, int64_t C) {
  const int64_t n = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (n >= N) return;
  const float* x = in + n * C;
  const float* dy = dout + n * C;
  const float m = mean[n], r = rstd[n];
  float sum_g = 0.0f, sum_gx = 0.0f;   // Σ g, Σ g ⊙ x̂
  for (int64_t c = lane; c < C; c += kWarp) {
    const float g = dy[c] * weight[c];
    sum_g += g;
    sum_gx += g * (x[c] - m) * r;
  }
  const float mean_g = warp_sum(sum_g) / float(C), mean_gx = warp_sum(sum_gx) / float(C);
  float* dx = din + n * C;
  for (int64_t c = lane; c < C; c += kWarp)
    dx[c] = r * (dy[c] * weight[c] - mean_g - (x[c] - m) * r * mean_gx);
}

// dout[n, c] · x̂[n, c], the term of dweight.
struct ScaledNormTerm {
  const float* dout;
  const float* in;
  const float* mean;
  const float* rstd;
  int64_t C;
  __device__ float operator()(int64_t n, int64_t c) const {
    return dout[n * C + c] * (in[n * C + c] - mean[n]) * rstd[n];
  }
};

unsigned warp_row_blocks(int64_t N) { return unsigned((N * kWarp + kThreads - 1) / kThreads); }

}  // namespace

void layernorm_forward(Tensor out, Tensor mean, Tensor rstd, Tensor in, Tensor weight,
                       Tensor bias, double eps) {
  KernelCall call("layernorm_forward", {{"out", out}, {"mean", mean}, {"rstd", rstd},
                                        {"in", in}, {"weight", weight}, {"bias", bias}});
  const int64_t N = rows_of(in), C = weight.shape()[0];
  if (N == 0 || C == 0) return;
  layernorm_rows<<<warp_row_blocks(N), kThreads, 0, call.stream()>>>(
      out.f32(), mean.f32(), rstd.f32(), in.f32(), weight.f32(),
      present(bias) ? bias.f32() : nullptr, N, C, float(eps));
  LOOM_CUDA_CHECK_LAUNCH("layernorm_rows");
}

void layernorm_backward(Tensor din, Tensor dweight, Tensor dbias, Tensor dout, Tensor in,
                        Tensor weight, Tensor mean, Tensor rstd) {
  KernelCall call("layernorm_backward",
                  {{"din", din}, {"dweight", dweight}, {"dbias", dbias}, {"dout", dout},
                   {"in", in}, {"weight", weight}, {"mean", mean}, {"rstd", rstd}});
  const int64_t N = rows_of(in), C = weight.shape()[0];
  if (N == 0 || C == 0) return;
  layernorm_din_rows<<<warp_row_blocks(N), kThreads, 0, call.stream()>>>(
      din.f32(), dout.f32(), in.f32(), weight.f32(), mean.f32(), rstd.f32(), N, C);
  LOOM_CUDA_CHECK_LAUNCH("layernorm_din_rows");
  accumulate_column_sums<<<column_sum_blocks(C), column_sum_threads(), 0, call.stream()>>>(
      dweight.f32(), N, C, ScaledNormTerm{dout.f32(), in.f32(), mean.f32(), rstd.f32(), C});
  LOOM_CUDA_CHECK_LAUNCH("accumulate_column_sums");
  if (present(dbias)) {
    accumulate_column_sums<<<column_sum_blocks(C), column_sum_threads(), 0, call.stream()>>>(
        dbias.f32(), N, C, MatrixTerm{dout.f32(), C});
    LOOM_CUDA_CHECK_LAUNCH("accumulate_column_sums");
  }
}

}  // namespace loom::cuda
