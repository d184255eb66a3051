// The tanh kernels (core/kernels.h) on the CPU reference: forward against std::tanh on odd
// sizes in both precisions, backward (from the forward's output) against central finite
// differences in double, in place over dout, and a CUDA tensor refused.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "core/kernels.h"
#include "tests/core/test_kernels_common.h"

namespace loom::test {
namespace {

constexpr int64_t B = 3, C = 7;   // 21 elements: no vector width divides them
constexpr int64_t kN = B * C;

std::vector<double> tanh_inputs(uint64_t stream) {
  std::vector<double> v = random_values<double>(kN, stream);
  for (double& x : v) x *= 4;   // the saturating tails as well as the centre
  return v;
}

TEST(Tanh, ForwardMatchesStdTanhAndMayRunInPlace) {
  std::vector<double> in = tanh_inputs(1), out(sz(kN)), expected(sz(kN));
  for (size_t i = 0; i < in.size(); ++i) expected[i] = std::tanh(in[i]);
  tanh_forward(view(out, {B, C}), view(in, {B, C}));
  expect_close(out, expected, 0, 1e-15, "out f64");
  std::vector<float> f = cast<float>(in);
  for (size_t i = 0; i < in.size(); ++i) expected[i] = std::tanh(double(f[i]));
  tanh_forward(view(f, {B, C}), view(f, {B, C}));   // in place
  expect_close(f, expected, 1e-7, 1e-6, "out f32 in place");
}

TEST(Tanh, BackwardMatchesFiniteDifferences) {
  std::vector<double> in = tanh_inputs(2), r = random_values<double>(kN, 3), out(sz(kN));
  auto loss = [&] {
    std::vector<double> o(sz(kN));
    tanh_forward(view(o, {B, C}), view(in, {B, C}));
    return dot(o, r);
  };
  tanh_forward(view(out, {B, C}), view(in, {B, C}));
  std::vector<double> din(sz(kN), 99.0);
  tanh_backward(view(din, {B, C}), view(r, {B, C}), view(out, {B, C}));
  expect_close(din, numeric_grad(in, loss), 1e-9, 1e-7, "din");
  std::vector<double> inplace = r;
  tanh_backward(view(inplace, {B, C}), view(inplace, {B, C}), view(out, {B, C}));
  expect_close(inplace, din, 0, 0, "din written over dout");
  std::vector<float> out_f = cast<float>(out), d_f = cast<float>(r);
  tanh_backward(view(d_f, {B, C}), view(d_f, {B, C}), view(out_f, {B, C}));
  expect_close(d_f, din, 1e-6, 1e-5, "din f32");
}

TEST(Tanh, RefusesBadShapesAndCudaTensors) {
  std::vector<float> a(sz(kN)), b(sz(kN)), c(sz(kN));
  std::string m = error_of([&] { tanh_forward(view(a, {B, C}), view(b, {C, B})); });
  EXPECT_NE(m.find("tanh_forward: out must be in's shape"), std::string::npos) << m;
  m = error_of([&] { tanh_backward(view(a, {B, C}), view(b, {B, C}), view(c, {kN})); });
  EXPECT_NE(m.find("tanh_backward: din must be out's shape"), std::string::npos) << m;
  m = error_of([&] {
    tanh_forward(view(a, {B, C}, Device::cuda(0)), view(b, {B, C}, Device::cuda(0)));
  });
  EXPECT_NE(m.find("tanh_forward: the tensors are on cuda:0"), std::string::npos) << m;
}

}  // namespace
}  // namespace loom::test
