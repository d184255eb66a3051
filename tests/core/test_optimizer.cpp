#include <gtest/gtest.h>

#include <cmath>

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
