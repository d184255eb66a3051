// CUDA tanh (core/kernels.h), f32, elementwise: out = tanh(in) (out may be in's memory);
// backward din = dout · (1 − out²) from the forward's output (din may be dout's memory).
#include "core/cuda/elementwise.cuh"
#include "core/kernels_cuda.h"

namespace loom::cuda {
namespace {
using namespace detail;

struct Tanh {
  float* out;
  const float* in;
  __device__ void operator()(int64_t i) const { out[i] = tanhf(in[i]); }
};
struct TanhBackward {
  float* din;
  const float* dout;
  const float* out;
  __device__ void operator()(int64_t i) const { din[i] = dout[i] * (1.0f - out[i] * out[i]); }
};

}  // namespace

void tanh_forward(Tensor out, Tensor in) {
  KernelCall call("tanh_forward", {{"out", out}, {"in", in}});
  launch_elementwise(call, "tanh", in.numel(), Tanh{out.f32(), in.f32()});
}

void tanh_backward(Tensor din, Tensor dout, Tensor out) {
  KernelCall call("tanh_backward", {{"din", din}, {"dout", dout}, {"out", out}});
  launch_elementwise(call, "tanh_backward", out.numel(),
                     TanhBackward{din.f32(), dout.f32(), out.f32()});
}

}  // namespace loom::cuda
