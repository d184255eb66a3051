// The layernorm kernels (core/kernels.h) on the CPU reference: forward against a naive
// double loop (with and without bias, (B, T, C) flattened), backward of in, weight and
// bias against central finite differences in double, accumulation, f32 against f64.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/kernels.h"
#include "tests/core/test_kernels_common.h"

namespace loom::test {
namespace {

constexpr int64_t B = 2, T = 5, C = 6;
constexpr double kEps = 1e-5;

// out, mean, rstd of a (B·T, C) input in double.
struct Normed {
  std::vector<double> out, mean, rstd;
};
Normed naive_layernorm(const std::vector<double>& in, const std::vector<double>& weight,
                       const std::vector<double>* bias) {
  Normed r{std::vector<double>(in.size()), std::vector<double>(sz(B * T)),
           std::vector<double>(sz(B * T))};
  for (int64_t n = 0; n < B * T; ++n) {
    double m = 0, v = 0;
    for (int64_t c = 0; c < C; ++c) m += in[sz(n * C + c)] / C;
    for (int64_t c = 0; c < C; ++c) v += (in[sz(n * C + c)] - m) * (in[sz(n * C + c)] - m) / C;
    const double rs = 1 / std::sqrt(v + kEps);
    for (int64_t c = 0; c < C; ++c)
      r.out[sz(n * C + c)] = (in[sz(n * C + c)] - m) * rs * weight[sz(c)] +
                             (bias != nullptr ? (*bias)[sz(c)] : 0.0);
    r.mean[sz(n)] = m;
    r.rstd[sz(n)] = rs;
  }
  return r;
}

template <class F>
class LayernormForward : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(LayernormForward, FloatTypes);

TYPED_TEST(LayernormForward, MatchesNaiveLoop) {
  using F = TypeParam;
  const double tol = sizeof(F) == 4 ? 2e-5 : 1e-12;
  // An offset row mean (3) checks the variance formula is not E[x²] − mean².
  std::vector<F> in = cast<F>(random_values<double>(B * T * C, 1));
  for (F& x : in) x += F(3);
  std::vector<F> weight = cast<F>(random_values<double>(C, 2)), bias = cast<F>(random_values<double>(C, 3));
  std::vector<double> in_d = cast<double>(in), weight_d = cast<double>(weight), bias_d = cast<double>(bias);
  std::vector<F> out(sz(B * T * C)), mean(sz(B * T)), rstd(sz(B * T));
  for (bool with_bias : {true, false}) {
    layernorm_forward(view(out, {B, T, C}), view(mean, {B, T}), view(rstd, {B * T}),
                      view(in, {B, T, C}), view(weight, {C}), with_bias ? view(bias, {C}) : Tensor{},
                      kEps);
    Normed e = naive_layernorm(in_d, weight_d, with_bias ? &bias_d : nullptr);
    expect_close(out, e.out, tol, tol, with_bias ? "out" : "out without bias");
    expect_close(mean, e.mean, tol, tol, "mean");
    expect_close(rstd, e.rstd, tol, tol, "rstd");
  }
}

TEST(LayernormBackward, MatchesCentralFiniteDifferencesAndAccumulates) {
  std::vector<double> in = random_values<double>(B * T * C, 11), weight = random_values<double>(C, 12),
                      bias = random_values<double>(C, 13), r = random_values<double>(B * T * C, 14);
  std::vector<double> out(sz(B * T * C)), mean(sz(B * T)), rstd(sz(B * T));
  auto forward = [&] {
    layernorm_forward(view(out, {B, T, C}), view(mean, {B, T}), view(rstd, {B, T}),
                      view(in, {B, T, C}), view(weight, {C}), view(bias, {C}), kEps);
  };
  auto loss = [&] {
    forward();
    return dot(out, r);
  };
  forward();
  std::vector<double> din(sz(B * T * C), 99.0), dweight(sz(C), 1.0), dbias(sz(C), -1.0);
  layernorm_backward(view(din, {B, T, C}), view(dweight, {C}), view(dbias, {C}),
                     view(r, {B, T, C}), view(in, {B, T, C}), view(weight, {C}),
                     view(mean, {B, T}), view(rstd, {B, T}));
  std::vector<double> num_w = numeric_grad(weight, loss), num_b = numeric_grad(bias, loss);
  for (double& g : num_w) g += 1.0;
  for (double& g : num_b) g -= 1.0;
  expect_close(din, numeric_grad(in, loss), 1e-7, 1e-7, "din");
  expect_close(dweight, num_w, 1e-7, 1e-7, "dweight (accumulated onto 1)");
  expect_close(dbias, num_b, 1e-7, 1e-7, "dbias (accumulated onto -1)");
}

TEST(LayernormBackward, F32AgreesWithF64AndBiasIsOptional) {
  std::vector<float> in_f = cast<float>(random_values<double>(B * T * C, 21));
  std::vector<float> weight_f = cast<float>(random_values<double>(C, 22));
  std::vector<float> dout_f = cast<float>(random_values<double>(B * T * C, 23));
  std::vector<double> in = cast<double>(in_f), weight = cast<double>(weight_f), dout = cast<double>(dout_f);
  std::vector<double> out(in.size()), mean(sz(B * T)), rstd(sz(B * T)), din(in.size()), dweight(sz(C));
  std::vector<float> out_f(in.size()), mean_f(sz(B * T)), rstd_f(sz(B * T)), din_f(in.size()),
      dweight_f(sz(C));
  layernorm_forward(view(out, {B * T, C}), view(mean, {B * T}), view(rstd, {B * T}),
                    view(in, {B * T, C}), view(weight, {C}), Tensor{}, kEps);
  layernorm_backward(view(din, {B * T, C}), view(dweight, {C}), Tensor{}, view(dout, {B * T, C}),
                     view(in, {B * T, C}), view(weight, {C}), view(mean, {B * T}),
                     view(rstd, {B * T}));
  layernorm_forward(view(out_f, {B * T, C}), view(mean_f, {B * T}), view(rstd_f, {B * T}),
                    view(in_f, {B * T, C}), view(weight_f, {C}), Tensor{}, kEps);
  layernorm_backward(view(din_f, {B * T, C}), view(dweight_f, {C}), Tensor{},
                     view(dout_f, {B * T, C}), view(in_f, {B * T, C}), view(weight_f, {C}),
                     view(mean_f, {B * T}), view(rstd_f, {B * T}));
  expect_close(out_f, out, 1e-5, 1e-5, "out f32");
  expect_close(din_f, din, 2e-5, 2e-5, "din f32");
  expect_close(dweight_f, dweight, 2e-5, 2e-5, "dweight f32");
}

TEST(Layernorm, ShapesAreChecked) {
  std::vector<float> in(sz(B * T * C)), out(sz(B * T * C)), weight(sz(C)), mean(sz(B * T)),
      rstd(sz(B * T));
  std::string m = error_of([&] {
    layernorm_forward(view(out, {B, T, C}), view(mean, {B * T - 1}), view(rstd, {B, T}),
                      view(in, {B, T, C}), view(weight, {C}), Tensor{}, kEps);
  });
  EXPECT_NE(m.find("layernorm_forward: mean must be one value per row"), std::string::npos) << m;
  m = error_of([&] {
    layernorm_forward(view(out, {B, T, C}), view(mean, {B, T}), view(rstd, {B, T}),
                      view(in, {B, T, C}), view(weight, {C - 1}), Tensor{}, kEps);
  });
  EXPECT_NE(m.find("weight must be (6,)"), std::string::npos) << m;
  m = error_of([&] {
    layernorm_forward(view(out, {B, T, C}, Device::cuda(0)), view(mean, {B, T}, Device::cuda(0)),
                      view(rstd, {B, T}, Device::cuda(0)), view(in, {B, T, C}, Device::cuda(0)),
                      view(weight, {C}, Device::cuda(0)), Tensor{}, kEps);
  });
  EXPECT_NE(m.find("layernorm_forward: the tensors are on cuda:0"), std::string::npos) << m;
}

}  // namespace
}  // namespace loom::test
