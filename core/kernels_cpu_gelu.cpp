// CPU reference of gelu (core/kernels.h), elementwise.
//   kTanh (GPT-2): 0.5 x (1 + tanh(u)), u = √(2/π) (x + 0.044715 x³). Since
//     0.5 (1 + tanh(u)) = σ(2u), this is x σ(2u) = x / (1 + e^(−2u)), and
//     gelu'(x) = σ(2u) + x σ(2u) (1 − σ(2u)) · 2 u'(x), u'(x) = √(2/π) (1 + 3 · 0.044715 x²).
//   kErf (BERT): x Φ(x), Φ(x) = 0.5 (1 + erf(x / √2)); gelu'(x) = Φ(x) + x φ(x),
//     φ(x) = e^(−x²/2) / √(2π).
// In float both go through exp_approx (Note [Vectorised exp] in core/kernels_cpu_detail.h)
// and erf through Abramowitz & Stegun 7.1.26 (absolute error below 1.5e-7, a couple of
// float ulps) so the loops vectorise; in double they use std::exp / std::erf.
#include <cmath>

#include "core/kernels_cpu.h"
#include "core/kernels_cpu_detail.h"

namespace loom::cpu {
namespace {
using namespace detail;

constexpr double kSqrt2OverPi = 0.79788456080286535588;   // √(2/π)
constexpr double kGeluCubic = 0.044715;
constexpr double kInvSqrt2 = 0.70710678118654752440;      // 1/√2
constexpr double kInvSqrt2Pi = 0.39894228040143267794;    // 1/√(2π)

// σ(2u) of the tanh form.
template <class F>
inline F tanh_gate(F x) {
  const F u = F(kSqrt2OverPi) * (x + F(kGeluCubic) * x * x * x);
  return F(1) / (F(1) + exp_approx(F(-2) * u));
}

// Φ(x) = 0.5 (1 + erf(x/√2)).
inline double normal_cdf(double x) { return 0.5 * (1.0 + std::erf(x * kInvSqrt2)); }
inline float normal_cdf(float x) {
  // A&S 7.1.26 on z = |x|/√2: erf(z) = 1 − t (a1 + t (a2 + t (a3 + t (a4 + t a5)))) e^(−z²),
  // t = 1 / (1 + p z); odd extension by the sign.
  const float z = std::fabs(x) * float(kInvSqrt2);
  const float t = 1.0f / (1.0f + 0.3275911f * z);
  float poly = 1.061405429f;
  poly = poly * t - 1.453152027f;
  poly = poly * t + 1.421413741f;
  poly = poly * t - 0.284496736f;
  poly = poly * t + 0.254829592f;
  const float erf_abs = 1.0f - poly * t * exp_approx(-z * z);
  return 0.5f * (1.0f + (x < 0.0f ? -erf_abs : erf_abs));
}

template <class F>
void gelu_forward_t(Tensor out_t, Tensor in_t, GeluForm form) {
  const int64_t n = in_t.numel();
  F* out = ptr<F>(out_t);
  const F* in = ptr<F>(in_t);
  if (form == GeluForm::kTanh) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) out[i] = in[i] * tanh_gate(in[i]);
  } else {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) out[i] = in[i] * normal_cdf(in[i]);
  }
}

// din may be dout's memory: each element reads dout[i] before writing din[i].
template <class F>
void gelu_backward_t(Tensor din_t, Tensor dout_t, Tensor in_t, GeluForm form) {
  const int64_t n = in_t.numel();
  F* din = ptr<F>(din_t);
  const F* dout = ptr<F>(dout_t);
  const F* in = ptr<F>(in_t);
  if (form == GeluForm::kTanh) {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) {
      const F x = in[i], s = tanh_gate(x);
      const F du = F(kSqrt2OverPi) * (F(1) + F(3 * kGeluCubic) * x * x);
      din[i] = dout[i] * (s + x * s * (F(1) - s) * F(2) * du);
    }
  } else {
#pragma omp parallel for simd schedule(static) if (n >= kParallelMin)
    for (int64_t i = 0; i < n; ++i) {
      const F x = in[i];
      const F pdf = F(kInvSqrt2Pi) * exp_approx(F(-0.5) * x * x);
      din[i] = dout[i] * (normal_cdf(x) + x * pdf);
    }
  }
}

}  // namespace

void gelu_forward(Tensor out, Tensor in, GeluForm form) {
  if (is_f64(out)) return gelu_forward_t<double>(out, in, form);
  gelu_forward_t<float>(out, in, form);
}

void gelu_backward(Tensor din, Tensor dout, Tensor in, GeluForm form) {
  if (is_f64(din)) return gelu_backward_t<double>(din, dout, in, form);
  gelu_backward_t<float>(din, dout, in, form);
}

}  // namespace loom::cpu
