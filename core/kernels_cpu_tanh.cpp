// CPU reference of tanh (core/kernels.h), elementwise: out = tanh(in),
// din = dout · (1 − out²). Only BERT's pooler uses it (B·C elements per step), so std::tanh
// in both precisions: accuracy over vectorisation.
#include <cmath>

#include "core/kernels_cpu.h"
#include "core/kernels_cpu_detail.h"

namespace loom::cpu {
namespace {
using namespace detail;

template <class F>
void tanh_forward_t(Tensor out_t, Tensor in_t) {
  const int64_t n = in_t.numel();
  F* out = ptr<F>(out_t);
  const F* in = ptr<F>(in_t);
#pragma omp parallel for schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) out[i] = std::tanh(in[i]);
}

// din may be dout's memory: each element reads dout[i] before writing din[i].
template <class F>
void tanh_backward_t(Tensor din_t, Tensor dout_t, Tensor out_t) {
  const int64_t n = out_t.numel();
  F* din = ptr<F>(din_t);
  const F* dout = ptr<F>(dout_t);
  const F* out = ptr<F>(out_t);
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) din[i] = dout[i] * (F(1) - out[i] * out[i]);
}

}  // namespace

void tanh_forward(Tensor out, Tensor in) {
  if (is_f64(out)) return tanh_forward_t<double>(out, in);
  tanh_forward_t<float>(out, in);
}

void tanh_backward(Tensor din, Tensor dout, Tensor out) {
  if (is_f64(din)) return tanh_backward_t<double>(din, dout, out);
  tanh_backward_t<float>(din, dout, out);
}

}  // namespace loom::cpu
