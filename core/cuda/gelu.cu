// CUDA GELU (core/kernels.h), f32, both forms, elementwise. The formulas are the CPU
// reference's (core/kernels_cpu_gelu.cpp) with the exact erff / expf of the CUDA math
// library where the CPU uses its vectorised approximations.
//   kTanh: gelu(x) = x σ(2u), u = √(2/π)(x + 0.044715 x³)   (x · ½(1 + tanh u) = x σ(2u))
//          gelu'(x) = s + x s (1 − s) · 2 du/dx, s = σ(2u), du/dx = √(2/π)(1 + 3·0.044715 x²)
//   kErf:  gelu(x) = x Φ(x), gelu'(x) = Φ(x) + x φ(x)
// din may be dout's memory: each thread reads dout[i] before it writes din[i].
#include "core/cuda/elementwise.cuh"
#include "core/kernels_cuda.h"

namespace loom::cuda {
namespace {
using namespace detail;

constexpr float kSqrt2OverPi = 0.79788456080286535588f;
constexpr float kGeluCubic = 0.044715f;
constexpr float kInvSqrt2 = 0.70710678118654752440f;
constexpr float kInvSqrt2Pi = 0.39894228040143267794f;

__device__ __forceinline__ float tanh_gate(float x) {   // σ(2u)
  const float u = kSqrt2OverPi * (x + kGeluCubic * x * x * x);
  return 1.0f / (1.0f + expf(-2.0f * u));
}
__device__ __forceinline__ float normal_cdf(float x) { return 0.5f * (1.0f + erff(x * kInvSqrt2)); }

struct GeluTanh {
  float* out;
  const float* in;
  __device__ void operator()(int64_t i) const { out[i] = in[i] * tanh_gate(in[i]); }
};
struct GeluErf {
  float* out;
  const float* in;
  __device__ void operator()(int64_t i) const { out[i] = in[i] * normal_cdf(in[i]); }
};
struct GeluTanhBackward {
  float* din;
  const float* dout;
  const float* in;
  __device__ void operator()(int64_t i) const {
    const float x = in[i], s = tanh_gate(x);
    const float du = kSqrt2OverPi * (1.0f + 3.0f * kGeluCubic * x * x);
    din[i] = dout[i] * (s + x * s * (1.0f - s) * 2.0f * du);
  }
};
struct GeluErfBackward {
  float* din;
  const float* dout;
  const float* in;
  __device__ void operator()(int64_t i) const {
    const float x = in[i];
    din[i] = dout[i] * (normal_cdf(x) + x * kInvSqrt2Pi * expf(-0.5f * x * x));
  }
};

}  // namespace

void gelu_forward(Tensor out, Tensor in, GeluForm form) {
  KernelCall call("gelu_forward", {{"out", out}, {"in", in}});
  if (form == GeluForm::kTanh)
    launch_elementwise(call, "gelu_tanh", in.numel(), GeluTanh{out.f32(), in.f32()});
  else
    launch_elementwise(call, "gelu_erf", in.numel(), GeluErf{out.f32(), in.f32()});
}

void gelu_backward(Tensor din, Tensor dout, Tensor in, GeluForm form) {
  KernelCall call("gelu_backward", {{"din", din}, {"dout", dout}, {"in", in}});
  if (form == GeluForm::kTanh)
    launch_elementwise(call, "gelu_tanh_backward", in.numel(),
                       GeluTanhBackward{din.f32(), dout.f32(), in.f32()});
  else
    launch_elementwise(call, "gelu_erf_backward", in.numel(),
                       GeluErfBackward{din.f32(), dout.f32(), in.f32()});
}

}  // namespace loom::cuda
