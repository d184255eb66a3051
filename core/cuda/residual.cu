// CUDA residual add (core/kernels.h), f32: out = a + b (out may alias a or b: each
// element is read before it is written by the same thread); backward dacc += dout.
#include "core/cuda/elementwise.cuh"
#include "core/kernels_cuda.h"

namespace loom::cuda {
namespace {
using namespace detail;

struct Add {
  float* out;
  const float* a;
  const float* b;
  __device__ void operator()(int64_t i) const { out[i] = a[i] + b[i]; }
};
struct Accumulate {
  float* dacc;
  const float* dout;
  __device__ void operator()(int64_t i) const { dacc[i] += dout[i]; }
};

}  // namespace

void residual_forward(Tensor out, Tensor a, Tensor b) {
  KernelCall call("residual_forward", {{"out", out}, {"a", a}, {"b", b}});
  launch_elementwise(call, "residual_add", a.numel(), Add{out.f32(), a.f32(), b.f32()});
}

void residual_backward(Tensor dacc, Tensor dout) {
  KernelCall call("residual_backward", {{"dacc", dacc}, {"dout", dout}});
  launch_elementwise(call, "residual_accumulate", dacc.numel(),
                     Accumulate{dacc.f32(), dout.f32()});
}

}  // namespace loom::cuda
