// The fused softmax cross-entropy (core/kernels.h) on the CPU reference: loss and lse
// against a naive double loop, ignore_index rows (zero loss, zero gradient), the
// gradient of scale · Σ loss against central finite differences in double, dlogits
// written over the logits, f32 (vectorised exp) against f64, targets refused by row.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/kernels.h"
#include "tests/core/test_kernels_common.h"

namespace loom::test {
namespace {

constexpr int64_t B = 2, T = 5, V = 7, N = B * T;
constexpr int kIgnore = -100;

// Targets with two ignored rows (row 3 and row 8).
std::vector<int32_t> targets_of() { return {0, 6, 3, kIgnore, 2, 2, 5, 1, kIgnore, 4}; }

std::vector<double> logits_of(uint64_t stream) {
  std::vector<double> x = random_values<double>(N * V, stream);
  for (double& v : x) v = 4 * v + 20;   // a large common offset: the max must be subtracted
  return x;
}

TEST(SoftmaxCrossEntropy, ForwardMatchesNaiveLoopInBothPrecisions) {
  std::vector<double> logits = cast<double>(cast<float>(logits_of(1)));
  std::vector<int32_t> targets = targets_of();
  std::vector<double> loss_e(sz(N)), lse_e(sz(N));
  for (int64_t n = 0; n < N; ++n) {
    if (targets[sz(n)] == kIgnore) continue;
    double s = 0;
    for (int64_t v = 0; v < V; ++v) s += std::exp(logits[sz(n * V + v)]);
    lse_e[sz(n)] = std::log(s);
    loss_e[sz(n)] = lse_e[sz(n)] - logits[sz(n * V + targets[sz(n)])];
  }
  std::vector<double> loss(sz(N), 99.0), lse(sz(N), 99.0);
  softmax_cross_entropy_forward(view(loss, {B, T}), view(lse, {B, T}), view(logits, {B, T, V}),
                                view(targets, {B, T}), kIgnore);
  expect_close(loss, loss_e, 1e-12, 1e-12, "loss f64 (ignored rows 0)");
  expect_close(lse, lse_e, 1e-12, 1e-12, "lse f64");
  std::vector<float> logits_f = cast<float>(logits), loss_f(sz(N)), lse_f(sz(N));
  softmax_cross_entropy_forward(view(loss_f, {N}), view(lse_f, {N}), view(logits_f, {N, V}),
                                view(targets, {N}), kIgnore);
  expect_close(loss_f, loss_e, 1e-5, 1e-5, "loss f32");
  expect_close(lse_f, lse_e, 1e-5, 1e-6, "lse f32");
}

TEST(SoftmaxCrossEntropy, BackwardMatchesFiniteDifferencesAndMayOverwriteLogits) {
  const double scale = 1.0 / 8;   // a mean over the 8 counted rows
  std::vector<double> logits = logits_of(11);
  std::vector<int32_t> targets = targets_of();
  std::vector<double> loss(sz(N)), lse(sz(N));
  auto forward = [&] {
    softmax_cross_entropy_forward(view(loss, {N}), view(lse, {N}), view(logits, {N, V}),
                                  view(targets, {N}), kIgnore);
  };
  auto total = [&] {
    forward();
    double s = 0;
    for (double l : loss) s += l;
    return scale * s;
  };
  forward();
  std::vector<double> dlogits(logits.size(), 99.0);
  softmax_cross_entropy_backward(view(dlogits, {N, V}), view(logits, {N, V}), view(lse, {N}),
                                 view(targets, {N}), kIgnore, scale);
  expect_close(dlogits, numeric_grad(logits, total), 1e-8, 1e-6, "dlogits");
  for (int64_t n : {3, 8})
    for (int64_t v = 0; v < V; ++v)
      ASSERT_EQ(dlogits[sz(n * V + v)], 0.0) << "ignored row " << n << ", column " << v;
  forward();
  std::vector<double> inplace = logits;   // dlogits in the logits' memory
  softmax_cross_entropy_backward(view(inplace, {N, V}), view(inplace, {N, V}), view(lse, {N}),
                                 view(targets, {N}), kIgnore, scale);
  expect_close(inplace, dlogits, 0, 0, "dlogits written over the logits");
  // f32, in place too, against the f64 gradient of the same float inputs.
  std::vector<float> logits_f = cast<float>(logits), loss_f(sz(N)), lse_f(sz(N));
  logits = cast<double>(logits_f);
  forward();
  softmax_cross_entropy_backward(view(dlogits, {N, V}), view(logits, {N, V}), view(lse, {N}),
                                 view(targets, {N}), kIgnore, scale);
  softmax_cross_entropy_forward(view(loss_f, {N}), view(lse_f, {N}), view(logits_f, {N, V}),
                                view(targets, {N}), kIgnore);
  softmax_cross_entropy_backward(view(logits_f, {N, V}), view(logits_f, {N, V}), view(lse_f, {N}),
                                 view(targets, {N}), kIgnore, scale);
  expect_close(logits_f, dlogits, 1e-6, 1e-4, "dlogits f32");
}

TEST(SoftmaxCrossEntropy, TargetsAreCheckedByRow) {
  std::vector<float> logits(sz(N * V), 1.0f), loss(sz(N), 7.0f), lse(sz(N));
  std::vector<int32_t> targets = targets_of();
  targets[6] = int32_t{V};
  std::string m = error_of([&] {
    softmax_cross_entropy_forward(view(loss, {N}), view(lse, {N}), view(logits, {N, V}),
                                  view(targets, {N}), kIgnore);
  });
  EXPECT_NE(m.find("softmax_cross_entropy_forward: targets[6] = 7 is outside [0, 7)"),
            std::string::npos) << m;
  for (float l : loss) ASSERT_EQ(l, 7.0f) << "a refused call wrote loss";
  targets[6] = -1;
  m = error_of([&] {
    softmax_cross_entropy_backward(view(logits, {N, V}), view(logits, {N, V}), view(lse, {N}),
                                   view(targets, {N}), kIgnore, 1.0);
  });
  EXPECT_NE(m.find("softmax_cross_entropy_backward: targets[6] = -1"), std::string::npos) << m;
  for (float x : logits) ASSERT_EQ(x, 1.0f) << "a refused call wrote dlogits";
  std::vector<int64_t> targets64(sz(N));
  m = error_of([&] {
    softmax_cross_entropy_forward(view(loss, {N}), view(lse, {N}), view(logits, {N, V}),
                                  Tensor(targets64.data(), {N}, DType::kI64), kIgnore);
  });
  EXPECT_NE(m.find("targets has dtype i64; integer arguments are i32"), std::string::npos) << m;
  m = error_of([&] {
    softmax_cross_entropy_forward(view(loss, {N}, Device::cuda(0)), view(lse, {N}, Device::cuda(0)),
                                  view(logits, {N, V}, Device::cuda(0)),
                                  view(targets, {N}, Device::cuda(0)), kIgnore);
  });
  EXPECT_NE(m.find("softmax_cross_entropy_forward: the tensors are on cuda:0"), std::string::npos)
      << m;
}

}  // namespace
}  // namespace loom::test
