// CUDA linear (core/kernels.h), f32.
//
// Note [CUDA linear]
// The three GEMMs go through cublasGemmEx in f32 (core/cuda/kernel_support.h gemm(), which
// maps loom's row-major layout onto cuBLAS's column-major one):
//   out = in · weightᵀ (+ bias)    the bias is first broadcast into out, then beta = 1
//   din = dout · weight            beta = 0 (written)
//   dweight += doutᵀ · in          beta = 1 (accumulated, Note [Kernel contract])
//   dbias += Σ_n dout[n]           deterministic column sums (Note [Deterministic column sums])
// The compute type is CUBLAS_COMPUTE_32F, or CUBLAS_COMPUTE_32F_FAST_TF32 after
// set_cuda_tf32(true): TF32 tensor cores round the inputs to a 10-bit mantissa (~1e-3
// relative per product, sums still in fp32), for ~8x the fp32 rate on Hopper.
// Broadcasting the bias costs one extra write and read of out (N, O) next to a GEMM of
// 2·N·O·I flops; a cuBLASLt bias epilogue would fuse it and is the natural step when the
// bf16 path (issue 19) moves these GEMMs to cuBLASLt.
#include "core/cuda/device_math.cuh"
#include "core/cuda/kernel_support.h"
#include "core/kernels_cuda.h"

namespace loom::cuda {
namespace {
using namespace detail;

constexpr int kThreads = 256;

// out[n, o] = bias[o].
__global__ void broadcast_rows(float* out, const float* bias, int64_t N, int64_t O) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < N * O;
       i += int64_t(gridDim.x) * blockDim.x)
    out[i] = bias[i % O];
}

}  // namespace

void linear_forward(Tensor out, Tensor in, Tensor weight, Tensor bias) {
  KernelCall call("linear_forward", {{"out", out}, {"in", in}, {"weight", weight}, {"bias", bias}});
  const int64_t N = rows_of(in), O = weight.shape()[0], I = weight.shape()[1];
  if (N == 0 || O == 0) return;
  float beta = 0.0f;
  if (present(bias)) {
    broadcast_rows<<<blocks_for(N * O, kThreads), kThreads, 0, call.stream()>>>(
        out.f32(), bias.f32(), N, O);
    LOOM_CUDA_CHECK_LAUNCH("broadcast_rows");
    beta = 1.0f;
  }
  Gemm g;   // out (N, O) = in (N, I) · weight (O, I)ᵀ
  g.ta = false, g.tb = true, g.m = N, g.n = O, g.k = I;
  g.a = in.f32(), g.lda = I, g.b = weight.f32(), g.ldb = I, g.c = out.f32(), g.ldc = O;
  g.beta = beta;
  gemm(call, g);
}

void linear_backward(Tensor din, Tensor dweight, Tensor dbias, Tensor dout, Tensor in,
                     Tensor weight) {
  KernelCall call("linear_backward", {{"din", din}, {"dweight", dweight}, {"dbias", dbias},
                                      {"dout", dout}, {"in", in}, {"weight", weight}});
  const int64_t N = rows_of(in), O = weight.shape()[0], I = weight.shape()[1];
  if (present(din) && N > 0 && I > 0) {
    Gemm g;   // din (N, I) = dout (N, O) · weight (O, I)
    g.m = N, g.n = I, g.k = O;
    g.a = dout.f32(), g.lda = O, g.b = weight.f32(), g.ldb = I, g.c = din.f32(), g.ldc = I;
    gemm(call, g);
  }
  if (N > 0 && O > 0 && I > 0) {
    Gemm g;   // dweight (O, I) += dout (N, O)ᵀ · in (N, I)
    g.ta = true, g.m = O, g.n = I, g.k = N;
    g.a = dout.f32(), g.lda = O, g.b = in.f32(), g.ldb = I, g.c = dweight.f32(), g.ldc = I;
    g.beta = 1.0f;
    gemm(call, g);
  }
  if (present(dbias) && O > 0) {
    accumulate_column_sums<<<column_sum_blocks(O), column_sum_threads(), 0, call.stream()>>>(
        dbias.f32(), N, O, MatrixTerm{dout.f32(), O});
    LOOM_CUDA_CHECK_LAUNCH("accumulate_column_sums");
  }
}

}  // namespace loom::cuda
