// GloVe's per-example math: the loss gradient against central finite differences in
// double precision, the fused float32 AdaGrad update against a hand computation, and the
// weighting function.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <vector>

#include "models/glove/glove_kernel.h"

namespace loom {
namespace {

constexpr int64_t kD = 7;

struct Pair {
  std::vector<double> w, c;
  double b = 0, b_ctx = 0, log_x = 0, weight = 0;
};

Pair random_pair(unsigned seed) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> u(-0.6, 0.6);
  Pair p;
  for (int64_t k = 0; k < kD; ++k) {
    p.w.push_back(u(gen));
    p.c.push_back(u(gen));
  }
  p.b = u(gen);
  p.b_ctx = u(gen);
  p.log_x = std::log(3.5);
  p.weight = glove_weight(3.5, 10.0, 0.75);
  return p;
}

double loss_of(const Pair& p) {
  return glove_pair_loss_grad<double>(p.w.data(), p.c.data(), p.b, p.b_ctx, p.log_x, p.weight, kD,
                                      nullptr, nullptr, nullptr, nullptr);
}

TEST(GloveMath, WeightFunction) {
  EXPECT_DOUBLE_EQ(glove_weight(100.0, 100.0, 0.75), 1.0);
  EXPECT_DOUBLE_EQ(glove_weight(250.0, 100.0, 0.75), 1.0);
  EXPECT_NEAR(glove_weight(10.0, 100.0, 0.75), std::pow(0.1, 0.75), 1e-15);
}

TEST(GloveMath, GradientMatchesFiniteDifferences) {
  for (unsigned seed : {1u, 2u, 3u}) {
    Pair p = random_pair(seed);
    std::vector<double> dw(kD), dc(kD);
    double db = 0, dbc = 0;
    glove_pair_loss_grad<double>(p.w.data(), p.c.data(), p.b, p.b_ctx, p.log_x, p.weight, kD,
                                 dw.data(), dc.data(), &db, &dbc);
    const double h = 1e-6;
    auto central = [&](double* x) {
      const double keep = *x;
      *x = keep + h;
      const double up = loss_of(p);
      *x = keep - h;
      const double down = loss_of(p);
      *x = keep;
      return (up - down) / (2 * h);
    };
    for (int64_t k = 0; k < kD; ++k) {
      EXPECT_NEAR(dw[k], central(&p.w[k]), 1e-8) << "seed " << seed << " dw index " << k;
      EXPECT_NEAR(dc[k], central(&p.c[k]), 1e-8) << "seed " << seed << " dc index " << k;
    }
    EXPECT_NEAR(db, central(&p.b), 1e-8) << "seed " << seed;
    EXPECT_NEAR(dbc, central(&p.b_ctx), 1e-8) << "seed " << seed;
  }
}

// Two rows of one word and one context, arbitrary accumulators: the fused kernel against
// Note [GloVe AdaGrad] computed by hand in double from the checked gradient.
TEST(GloveMath, AdaGradUpdateMatchesHandComputation) {
  Pair p = random_pair(5);
  const int64_t V = 2;
  std::vector<float> W(V * kD, 0.f), C(V * kD, 0.f), b(V, 0.f), bc(V, 0.f);
  std::vector<float> gW(V * kD, 1.f), gC(V * kD, 1.f), gb(V, 1.f), gbc(V, 1.f);
  for (int64_t k = 0; k < kD; ++k) {   // record (row 1, col 0)
    W[kD + k] = static_cast<float>(p.w[k]);
    C[k] = static_cast<float>(p.c[k]);
    gW[kD + k] = 1.0f + 0.25f * static_cast<float>(k);
    gC[k] = 2.0f + 0.5f * static_cast<float>(k);
  }
  b[1] = static_cast<float>(p.b);
  bc[0] = static_cast<float>(p.b_ctx);
  gb[1] = 1.5f;
  gbc[0] = 3.0f;
  const GloveView view{W.data(), C.data(), b.data(), bc.data(), gW.data(), gC.data(), gb.data(), gbc.data(), kD};
  const GloveHyper hyper{0.05f, 0.01f};   // a small clip so that some components are clipped
  GloveRecord rec{1, 0, static_cast<float>(p.log_x), static_cast<float>(p.weight)};

  std::vector<double> dw(kD), dc(kD);
  double db = 0, dbc = 0;
  const double want_loss = glove_pair_loss_grad<double>(p.w.data(), p.c.data(), p.b, p.b_ctx, p.log_x,
                                                        p.weight, kD, dw.data(), dc.data(), &db, &dbc);
  const std::vector<float> gW0 = gW, gC0 = gC;
  const double loss = glove_update(view, rec, hyper);
  EXPECT_NEAR(loss, want_loss, 1e-6);
  auto clip = [&](double u) { return std::max(-0.01, std::min(0.01, u)); };
  int clipped = 0;
  for (int64_t k = 0; k < kD; ++k) {
    const double uw = clip(0.05 * dw[k]), uc = clip(0.05 * dc[k]);
    clipped += std::fabs(0.05 * dw[k]) > 0.01 || std::fabs(0.05 * dc[k]) > 0.01;
    EXPECT_NEAR(W[kD + k], p.w[k] - uw / std::sqrt(gW0[kD + k]), 1e-6) << "W index " << k;
    EXPECT_NEAR(C[k], p.c[k] - uc / std::sqrt(gC0[k]), 1e-6) << "W_ctx index " << k;
    EXPECT_NEAR(gW[kD + k], gW0[kD + k] + uw * uw, 1e-6) << "gradsq W index " << k;
    EXPECT_NEAR(gC[k], gC0[k] + uc * uc, 1e-6) << "gradsq W_ctx index " << k;
    EXPECT_EQ(W[k], 0.f) << "row 0 of W must not move";
  }
  EXPECT_GT(clipped, 0) << "the test should exercise clipping";
  EXPECT_NEAR(b[1], p.b - 0.05 * db / std::sqrt(1.5), 1e-6);
  EXPECT_NEAR(bc[0], p.b_ctx - 0.05 * dbc / std::sqrt(3.0), 1e-6);
  EXPECT_NEAR(gb[1], 1.5 + 0.0025 * db * db, 1e-6);
  EXPECT_NEAR(gbc[0], 3.0 + 0.0025 * dbc * dbc, 1e-6);
}

// With gradsq = 1 and no clipping the first update is exactly -eta * gradient: the float
// kernel follows the finite-difference-checked gradient.
TEST(GloveMath, FirstStepIsEtaTimesGradient) {
  Pair p = random_pair(9);
  std::vector<float> W(p.w.begin(), p.w.end()), C(p.c.begin(), p.c.end());
  std::vector<float> b{static_cast<float>(p.b)}, bc{static_cast<float>(p.b_ctx)};
  std::vector<float> gW(kD, 1.f), gC(kD, 1.f), gb(1, 1.f), gbc(1, 1.f);
  const GloveView view{W.data(), C.data(), b.data(), bc.data(), gW.data(), gC.data(), gb.data(), gbc.data(), kD};
  glove_update(view, GloveRecord{0, 0, static_cast<float>(p.log_x), static_cast<float>(p.weight)},
               GloveHyper{0.05f, 100.f});
  std::vector<double> dw(kD), dc(kD);
  double db = 0, dbc = 0;
  glove_pair_loss_grad<double>(p.w.data(), p.c.data(), p.b, p.b_ctx, p.log_x, p.weight, kD, dw.data(),
                               dc.data(), &db, &dbc);
  for (int64_t k = 0; k < kD; ++k) {
    EXPECT_NEAR(W[k], p.w[k] - 0.05 * dw[k], 1e-6) << "index " << k;
    EXPECT_NEAR(C[k], p.c[k] - 0.05 * dc[k], 1e-6) << "index " << k;
  }
  EXPECT_NEAR(b[0], p.b - 0.05 * db, 1e-6);
}

}  // namespace
}  // namespace loom
