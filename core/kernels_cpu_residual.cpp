// CPU reference of the residual add (core/kernels.h): out = a + b, dacc += dout.
// Elementwise, so out may be the memory of a or b.
#include "core/kernels_cpu.h"
#include "core/kernels_cpu_detail.h"

namespace loom::cpu {
namespace {
using namespace detail;

template <class F>
void residual_forward_t(Tensor out_t, Tensor a_t, Tensor b_t) {
  const int64_t n = a_t.numel();
  F* out = ptr<F>(out_t);
  const F* a = ptr<F>(a_t);
  const F* b = ptr<F>(b_t);
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) out[i] = a[i] + b[i];
}

template <class F>
void residual_backward_t(Tensor dacc_t, Tensor dout_t) {
  const int64_t n = dacc_t.numel();
  F* dacc = ptr<F>(dacc_t);
  const F* dout = ptr<F>(dout_t);
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
  for (int64_t i = 0; i < n; ++i) dacc[i] += dout[i];
}

}  // namespace

void residual_forward(Tensor out, Tensor a, Tensor b) {
  if (is_f64(out)) return residual_forward_t<double>(out, a, b);
  residual_forward_t<float>(out, a, b);
}

void residual_backward(Tensor dacc, Tensor dout) {
  if (is_f64(dacc)) return residual_backward_t<double>(dacc, dout);
  residual_backward_t<float>(dacc, dout);
}

}  // namespace loom::cpu
