// The gelu and residual kernels (core/kernels.h) on the CPU reference: both gelu forms
// against the closed forms in double, backward against central finite differences, din
// aliasing dout, f32 (vectorised exp / erf approximations) against f64; residual add
// and its accumulating backward.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>
#include <vector>

#include "core/kernels.h"
#include "tests/core/test_kernels_common.h"

namespace loom::test {
namespace {

constexpr int64_t B = 3, T = 7, C = 5;   // 105 elements: no vector width divides them
constexpr int64_t kN = B * T * C;

double gelu_ref(double x, GeluForm form) {
  if (form == GeluForm::kErf) return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0)));
  const double k = std::sqrt(2.0 / std::numbers::pi);
  return 0.5 * x * (1 + std::tanh(k * (x + 0.044715 * x * x * x)));
}

// Values spread over [-6, 6): the tails (saturation) as well as the centre.
std::vector<double> gelu_inputs(uint64_t stream) {
  std::vector<double> v = random_values<double>(kN, stream);
  for (double& x : v) x *= 6;
  return v;
}

class GeluForms : public ::testing::TestWithParam<GeluForm> {};
INSTANTIATE_TEST_SUITE_P(Both, GeluForms, ::testing::Values(GeluForm::kTanh, GeluForm::kErf));

TEST_P(GeluForms, ForwardMatchesClosedFormInBothPrecisions) {
  const GeluForm form = GetParam();
  std::vector<double> in = gelu_inputs(1), out(sz(kN)), expected(sz(kN));
  for (size_t i = 0; i < in.size(); ++i) expected[i] = gelu_ref(in[i], form);
  gelu_forward(view(out, {B, T, C}), view(in, {B, T, C}), form);
  expect_close(out, expected, 1e-14, 1e-14, "out f64");
  std::vector<float> in_f = cast<float>(in), out_f(sz(kN));
  for (size_t i = 0; i < in.size(); ++i) expected[i] = gelu_ref(double(in_f[i]), form);
  gelu_forward(view(out_f, {B, T, C}), view(in_f, {B, T, C}), form);
  expect_close(out_f, expected, 1e-6, 1e-6, "out f32");
}

TEST_P(GeluForms, BackwardMatchesFiniteDifferencesAndMayAliasDout) {
  const GeluForm form = GetParam();
  std::vector<double> in = gelu_inputs(2), r = random_values<double>(kN, 3), din(sz(kN), 99.0);
  auto loss = [&] {
    std::vector<double> out(sz(kN));
    gelu_forward(view(out, {B, T, C}), view(in, {B, T, C}), form);
    return dot(out, r);
  };
  gelu_backward(view(din, {B, T, C}), view(r, {B, T, C}), view(in, {B, T, C}), form);
  expect_close(din, numeric_grad(in, loss), 1e-8, 1e-7, "din");
  std::vector<double> inplace = r;   // din is dout's memory
  gelu_backward(view(inplace, {B, T, C}), view(inplace, {B, T, C}), view(in, {B, T, C}), form);
  expect_close(inplace, din, 0, 0, "din written over dout");
  // f32: the same gradient within float tolerance, also in place.
  std::vector<float> in_f = cast<float>(in), d_f = cast<float>(r);
  gelu_backward(view(d_f, {B, T, C}), view(d_f, {B, T, C}), view(in_f, {B, T, C}), form);
  expect_close(d_f, din, 2e-6, 2e-5, "din f32");
}

TEST(Residual, ForwardAddsInPlaceAndBackwardAccumulates) {
  std::vector<double> a = random_values<double>(kN, 4), b = random_values<double>(kN, 5);
  std::vector<double> expected(sz(kN));
  for (size_t i = 0; i < a.size(); ++i) expected[i] = a[i] + b[i];
  std::vector<double> out(sz(kN));
  residual_forward(view(out, {B, T, C}), view(a, {B, T, C}), view(b, {B, T, C}));
  expect_close(out, expected, 0, 0, "out");
  residual_forward(view(a, {B, T, C}), view(a, {B, T, C}), view(b, {B, T, C}));   // a += b
  expect_close(a, expected, 0, 0, "out in a's memory");
  std::vector<float> dacc = cast<float>(b), dout = cast<float>(random_values<double>(kN, 6));
  std::vector<double> sum(sz(kN));
  for (size_t i = 0; i < sum.size(); ++i) sum[i] = double(dacc[i]) + double(dout[i]);
  residual_backward(view(dacc, {B, T, C}), view(dout, {B, T, C}));
  expect_close(dacc, sum, 1e-7, 1e-7, "dacc += dout");
  std::string m = error_of([&] {
    residual_backward(view(dacc, {B, T, C}), view(dout, {B, C, T}));
  });
  EXPECT_NE(m.find("residual_backward: dout must be dacc's shape"), std::string::npos) << m;
  m = error_of([&] {
    gelu_forward(view(dacc, {B, T, C}, Device::cuda(0)), view(dout, {B, T, C}, Device::cuda(0)),
                 GeluForm::kTanh);
  });
  EXPECT_NE(m.find("gelu_forward: the tensors are on cuda:0"), std::string::npos) << m;
}

}  // namespace
}  // namespace loom::test
