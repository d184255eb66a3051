#include <gtest/gtest.h>

#include <cmath>
#include <set>
#include <vector>

#include "core/rng.h"

namespace loom {

// Known-answer vectors of Philox4x32-10 (Random123's kat_vectors).
TEST(Philox, KnownAnswers) {
  PhiloxBlock zero = philox(0, 0, 0);
  EXPECT_EQ(zero, (PhiloxBlock{0x6627e8d5u, 0xe169c58du, 0xbc57ac4cu, 0x9b00dbd8u}));
  PhiloxBlock ones = philox(~0ull, ~0ull, ~0ull);
  EXPECT_EQ(ones, (PhiloxBlock{0x408f276du, 0x41c83b0eu, 0xa20bc7c6u, 0x6d5451fdu}));
  PhiloxBlock pi = philox(0x299f31d0a4093822ull, 0x0370734413198a2eull, 0x85a308d3243f6a88ull);
  EXPECT_EQ(pi, (PhiloxBlock{0xd16cfe09u, 0x94fdccebu, 0x5001e420u, 0x24126ea1u}));
}

TEST(Rng, StreamsDifferByRankAndPurpose) {
  Rng a(42, 0, RngPurpose::kInit), b(42, 1, RngPurpose::kInit), c(42, 0, RngPurpose::kData);
  Rng a2(42, 0, RngPurpose::kInit);
  std::vector<uint32_t> va, vb, vc, va2;
  for (int i = 0; i < 16; ++i) {
    va.push_back(a.next_u32());
    vb.push_back(b.next_u32());
    vc.push_back(c.next_u32());
    va2.push_back(a2.next_u32());
  }
  EXPECT_EQ(va, va2);
  EXPECT_NE(va, vb);
  EXPECT_NE(va, vc);
}

TEST(Rng, SeekReproducesTheStreamExactly) {
  Rng r(7, 3, RngPurpose::kShuffle);
  std::vector<uint32_t> first;
  for (int i = 0; i < 37; ++i) first.push_back(r.next_u32());
  EXPECT_EQ(r.position(), 37u);
  Rng s(7, 3, RngPurpose::kShuffle);
  s.seek(13);
  for (int i = 13; i < 37; ++i) ASSERT_EQ(s.next_u32(), first[static_cast<size_t>(i)]) << i;
}

TEST(Rng, UniformAndBelowAreInRangeAndUnbiased) {
  Rng r(1, 0, RngPurpose::kTest);
  constexpr int kN = 200000;
  double sum = 0.0;
  std::vector<int> hist(10, 0);
  for (int i = 0; i < kN; ++i) {
    double u = r.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
    uint64_t k = r.below(10);
    ASSERT_LT(k, 10u);
    ++hist[k];
  }
  EXPECT_NEAR(sum / kN, 0.5, 0.005);
  // Chi-square with 9 degrees of freedom: 27.9 is the 0.999 quantile.
  double chi2 = 0.0;
  for (int h : hist) chi2 += (h - kN / 10.0) * (h - kN / 10.0) / (kN / 10.0);
  EXPECT_LT(chi2, 27.9);
}

TEST(Rng, NormalHasUnitVariance) {
  Rng r(5, 0, RngPurpose::kInit);
  constexpr int kN = 100000;
  double s = 0.0, s2 = 0.0;
  for (int i = 0; i < kN; ++i) {
    double x = r.normal();
    ASSERT_TRUE(std::isfinite(x));
    s += x;
    s2 += x * x;
  }
  EXPECT_NEAR(s / kN, 0.0, 0.02);
  EXPECT_NEAR(s2 / kN, 1.0, 0.02);
}

}  // namespace loom
