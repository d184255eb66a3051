#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "core/optimizer.h"
#include "core/schedule.h"

namespace loom {
namespace {

// Two parameters with known values and gradients; expected updates computed by hand in
// double and compared with float tolerance.
struct Fixture {
  ParamStore ps;
  Fixture() {
    ps.declare("a", {2});
    ps.declare("b", {3});
    ps.finalize();
    float va[] = {1.0f, -2.0f}, ga[] = {0.5f, -1.0f};
    float vb[] = {0.0f, 3.0f, 4.0f}, gb[] = {2.0f, 0.0f, -0.25f};
    for (int i = 0; i < 2; ++i) ps.value("a").f32()[i] = va[i], ps.grad("a").f32()[i] = ga[i];
    for (int i = 0; i < 3; ++i) ps.value("b").f32()[i] = vb[i], ps.grad("b").f32()[i] = gb[i];
  }
};

TEST(Optimizer, SgdSubtractsScaledGradient) {
  Fixture f;
  Sgd opt(f.ps);
  opt.step(f.ps, 0.1);
  EXPECT_FLOAT_EQ(f.ps.value("a").f32()[0], 1.0f - 0.05f);
  EXPECT_FLOAT_EQ(f.ps.value("b").f32()[2], 4.0f + 0.025f);
  EXPECT_TRUE(opt.slot_names().empty());
}

TEST(Optimizer, AdaGradMatchesHandComputation) {
  Fixture f;
  AdaGrad opt(f.ps, 1.0f);
  opt.step(f.ps, 0.05);
  opt.step(f.ps, 0.05);   // same gradient twice
  // gradsq after two steps: 1 + 2 g^2; w = w0 - lr g / sqrt(1 + g^2) - lr g / sqrt(1 + 2 g^2)
  double g = 0.5, w = 1.0 - 0.05 * g / std::sqrt(1 + g * g) - 0.05 * g / std::sqrt(1 + 2 * g * g);
  EXPECT_NEAR(f.ps.value("a").f32()[0], w, 1e-6);
  EXPECT_FLOAT_EQ(opt.slot_view(0, "gradsq").f32()[0], 1.0f + 2 * 0.25f);
  EXPECT_FLOAT_EQ(opt.slot_view(1, "gradsq").f32()[1], 1.0f);   // zero gradient
  EXPECT_EQ(opt.slot_view(1, "gradsq").shape(), (Shape{3}));
  EXPECT_THROW(opt.slot_view(0, "m"), Error);
}

TEST(Optimizer, AdamWFirstStepMovesByLrTimesSign) {
  Fixture f;
  AdamW opt(f.ps, AdamWOptions{0.9, 0.999, 1e-8, 0.0});
  opt.step(f.ps, 0.01);
  // Bias-corrected first step: mhat = g, vhat = g^2, so the update is lr * sign(g).
  EXPECT_NEAR(f.ps.value("a").f32()[0], 1.0 - 0.01, 1e-6);
  EXPECT_NEAR(f.ps.value("a").f32()[1], -2.0 + 0.01, 1e-6);
  EXPECT_NEAR(f.ps.value("b").f32()[1], 3.0, 1e-6);     // zero gradient: no move
  EXPECT_EQ(opt.steps_taken(), 1);
  EXPECT_NEAR(opt.slot_view(0, "m").f32()[0], 0.05, 1e-7);
  // (1 - beta2) in float is 0.001 to about 1e-4 relative.
  EXPECT_NEAR(opt.slot_view(0, "v").f32()[0], 0.001 * 0.25, 3e-8);
}

TEST(Optimizer, AdamWDecoupledWeightDecay) {
  Fixture f;
  f.ps.zero_grads();
  AdamW opt(f.ps, AdamWOptions{0.9, 0.999, 1e-8, 0.1});
  opt.step(f.ps, 0.5);
  EXPECT_NEAR(f.ps.value("b").f32()[2], 4.0 - 0.5 * 0.1 * 4.0, 1e-6);
}

TEST(Optimizer, AdamWDecaysOnlyTheMaskedParameters) {
  Fixture f;
  f.ps.zero_grads();
  AdamWOptions o{0.9, 0.999, 1e-8, 0.1};
  o.decay = {0, 1};   // "a" (a bias, a LayerNorm) keeps its value; "b" (a weight) decays
  AdamW opt(f.ps, o);
  opt.step(f.ps, 0.5);
  EXPECT_EQ(f.ps.value("a").f32()[1], -2.0f);
  EXPECT_NEAR(f.ps.value("b").f32()[2], 4.0 - 0.5 * 0.1 * 4.0, 1e-6);
  o.decay = {1};
  EXPECT_THROW(AdamW(f.ps, o), Error);   // one flag per parameter
}

// LAMB in double, written from the paper's algorithm (Note [LAMB]) for one tensor.
std::vector<double> lamb_reference(std::vector<double> w, const std::vector<std::vector<double>>& grads,
                                   double lr, double b1, double b2, double eps, double wd, bool adapt) {
  std::vector<double> m(w.size(), 0.0), v(w.size(), 0.0), u(w.size());
  for (size_t t = 1; t <= grads.size(); ++t) {
    double nw = 0, nu = 0;
    for (size_t i = 0; i < w.size(); ++i) {
      const double g = grads[t - 1][i];
      m[i] = b1 * m[i] + (1 - b1) * g;
      v[i] = b2 * v[i] + (1 - b2) * g * g;
      u[i] = (m[i] / (1 - std::pow(b1, t))) / (std::sqrt(v[i] / (1 - std::pow(b2, t))) + eps) + wd * w[i];
      nw += w[i] * w[i], nu += u[i] * u[i];
    }
    const double trust = adapt && nw > 0 && nu > 0 ? std::sqrt(nw / nu) : 1.0;
    for (size_t i = 0; i < w.size(); ++i) w[i] -= lr * trust * u[i];
  }
  return w;
}

TEST(Optimizer, LambMatchesThePaperPerTensorAndSkipsAdaptationWithoutDecay) {
  // "big" spans several 4096-element chunks and odd sizes; "bias" does not decay (no trust ratio).
  ParamStore ps;
  ps.declare("big", {3, 4099});
  ps.declare("bias", {7});
  ps.finalize();
  const int64_t nb = 3 * 4099;
  std::vector<double> w0(nb), wb0(7);
  std::vector<std::vector<double>> gs(3, std::vector<double>(nb)), gb(3, std::vector<double>(7));
  for (int64_t i = 0; i < nb; ++i) w0[i] = ps.value(0).f32()[i] = float(std::sin(0.37 * double(i)) * 0.05);
  for (int i = 0; i < 7; ++i) wb0[i] = ps.value(1).f32()[i] = float(0.1 * i - 0.3);
  AdamWOptions o{0.9, 0.999, 1e-6, 0.01};
  o.decay = {1, 0};
  Lamb opt(ps, o);
  for (int t = 0; t < 3; ++t) {
    for (int64_t i = 0; i < nb; ++i) gs[t][i] = ps.grad(0).f32()[i] = float(std::cos(0.11 * double(i) + t) * 1e-3);
    for (int i = 0; i < 7; ++i) gb[t][i] = ps.grad(1).f32()[i] = float(0.01 * (i - 3) * (t + 1));
    opt.step(ps, 0.02);
  }
  const std::vector<double> want = lamb_reference(w0, gs, 0.02, 0.9, 0.999, 1e-6, 0.01, true);
  const std::vector<double> want_b = lamb_reference(wb0, gb, 0.02, 0.9, 0.999, 1e-6, 0.0, false);
  double err = 0, moved = 0;
  for (int64_t i = 0; i < nb; ++i) {
    err = std::max(err, std::abs(ps.value(0).f32()[i] - want[size_t(i)]));
    moved = std::max(moved, std::abs(want[size_t(i)] - w0[size_t(i)]));
  }
  EXPECT_LT(err, 1e-6);
  EXPECT_GT(moved, 1e-3);   // the trust ratio (~‖w‖/‖u‖, far from 1) moved it
  for (int i = 0; i < 7; ++i) EXPECT_NEAR(ps.value(1).f32()[i], want_b[size_t(i)], 1e-6) << i;
  EXPECT_EQ(opt.trust_ratios()[1], 1.0);
  EXPECT_NE(opt.trust_ratios()[0], 1.0);
  EXPECT_EQ(opt.name(), "lamb");
  EXPECT_EQ(opt.slot_view(1, "m").shape(), (Shape{7}));
}

TEST(Schedule, LinearAndWarmupCosine) {
  EXPECT_DOUBLE_EQ(lr_linear(0, 100, 0.025, 1e-4), 0.025);
  EXPECT_DOUBLE_EQ(lr_linear(50, 100, 0.025, 1e-4), 0.0125);
  EXPECT_DOUBLE_EQ(lr_linear(100, 100, 0.025, 1e-4), 1e-4);
  EXPECT_DOUBLE_EQ(lr_warmup_cosine(0, 10, 110, 1.0, 0.0), 0.1);
  EXPECT_DOUBLE_EQ(lr_warmup_cosine(9, 10, 110, 1.0, 0.0), 1.0);
  EXPECT_NEAR(lr_warmup_cosine(60, 10, 110, 1.0, 0.0), 0.5, 1e-12);
  EXPECT_NEAR(lr_warmup_cosine(110, 10, 110, 1.0, 0.1), 0.1, 1e-12);
}

}  // namespace
}  // namespace loom
