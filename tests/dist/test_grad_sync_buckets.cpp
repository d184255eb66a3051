// GradSync's bucket assignment (Note [Bucket order] in dist/grad_sync.h) and its misuse
// checks, without MPI: reverse declaration order, caps respected (and filled: the next
// parameter would not have fit), a small first bucket, contiguous ranges that cover
// exactly the parameters; a parameter never marked, or marked twice, is an assertion
// naming it.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/param_store.h"
#include "dist/communicator.h"
#include "dist/grad_sync.h"
#include "tests/support/solo_communicator.h"

namespace loom::test {
namespace {

// Sizes in elements, declared as p0, p1, ...
void declare(ParamStore& ps, const std::vector<int64_t>& sizes) {
  for (size_t i = 0; i < sizes.size(); ++i) ps.declare("p" + std::to_string(i), {sizes[i]});
  ps.finalize();
}

int64_t end_of(const ParamStore& ps, int p) { return ps.entry(p).offset + ps.entry(p).numel; }

// Every property of Note [Bucket order] for `buckets` over `ps`.
void check_buckets(const ParamStore& ps, const std::vector<GradBucket>& buckets,
                   const GradSyncOptions& o) {
  ASSERT_FALSE(buckets.empty());
  EXPECT_EQ(buckets.front().last_param, ps.size() - 1) << "bucket 0 starts at the last parameter";
  EXPECT_EQ(buckets.back().first_param, 0) << "the last bucket ends at the first parameter";
  for (size_t b = 0; b < buckets.size(); ++b) {
    const GradBucket& k = buckets[b];
    const int64_t cap = b == 0 ? o.first_bucket_cap_bytes : o.bucket_cap_bytes;
    ASSERT_LE(k.first_param, k.last_param) << "bucket " << b;
    if (b + 1 < buckets.size()) {
      EXPECT_EQ(buckets[b + 1].last_param, k.first_param - 1) << "bucket " << b + 1 << " continues downwards";
    }
    EXPECT_EQ(k.offset, ps.entry(k.first_param).offset) << "bucket " << b;
    EXPECT_EQ(k.offset + k.count, end_of(ps, k.last_param)) << "bucket " << b;
    EXPECT_EQ(k.bytes(), k.count * 4);
    if (k.first_param != k.last_param) {
      EXPECT_LE(k.bytes(), cap) << "bucket " << b << " of several parameters exceeds its cap";
    }
    if (k.first_param > 0) {   // greedy: the next parameter down would not have fit
      EXPECT_GT((end_of(ps, k.last_param) - ps.entry(k.first_param - 1).offset) * 4, cap)
          << "bucket " << b << " stopped before its cap";
    }
  }
}

TEST(GradSyncBuckets, ReverseOrderCapsAndContiguousRanges) {
  ParamStore ps;
  declare(ps, {300, 7, 1, 64, 13, 129, 5, 40, 2, 77});
  GradSyncOptions o;
  o.first_bucket_cap_bytes = 300;   // 75 floats
  o.bucket_cap_bytes = 1024;        // 256 floats
  std::vector<GradBucket> buckets = assign_buckets(ps, o);
  check_buckets(ps, buckets, o);
  ASSERT_GE(buckets.size(), 3u);
  EXPECT_EQ(buckets[0].first_param, buckets[0].last_param) << "p9 (77 floats) fills bucket 0 alone";
  EXPECT_EQ(buckets.back().first_param, 0);
  EXPECT_EQ(buckets.back().last_param, 0) << "p0 (300 floats) exceeds the cap: a bucket of its own";
}

TEST(GradSyncBuckets, DefaultCapsGiveASmallFirstBucket) {
  ParamStore ps;   // 4 x 1 MiB and 2 x 3 MiB of floats
  declare(ps, {1 << 18, 1 << 18, 3 << 18, 1 << 18, 3 << 18, 1 << 18});
  GradSyncOptions o;
  std::vector<GradBucket> buckets = assign_buckets(ps, o);
  check_buckets(ps, buckets, o);
  EXPECT_EQ(buckets[0].bytes(), int64_t(1) << 20) << "bucket 0: the last 1 MiB parameter only";
  EXPECT_EQ(buckets.size(), 2u) << "the other 9 MiB fit one 25 MiB bucket";
}

TEST(GradSyncBuckets, EveryParameterInExactlyOneBucket) {
  ParamStore ps;
  declare(ps, {3, 17, 16, 15, 1, 33, 64, 65, 2});
  GradSyncOptions o;
  o.first_bucket_cap_bytes = 64;
  o.bucket_cap_bytes = 128;
  SoloCommunicator solo;
  GradSync sync(ps, solo, o);
  check_buckets(ps, sync.buckets(), o);
  std::vector<int> seen(size_t(ps.size()), 0);
  for (size_t b = 0; b < sync.buckets().size(); ++b)
    for (int p = sync.buckets()[b].first_param; p <= sync.buckets()[b].last_param; ++p) {
      ++seen[size_t(p)];
      EXPECT_EQ(sync.bucket_of(p), int(b)) << "p" << p;
    }
  for (int p = 0; p < ps.size(); ++p) EXPECT_EQ(seen[size_t(p)], 1) << "p" << p;
  EXPECT_EQ(sync.stats().buckets, int(sync.buckets().size()));
}

TEST(GradSyncBuckets, SoloFinishDividesAndResets) {
  ParamStore ps;
  declare(ps, {5, 3});
  SoloCommunicator solo;
  GradSync sync(ps, solo);
  for (int step = 0; step < 2; ++step) {
    for (int p = 0; p < 2; ++p)
      for (int64_t i = 0; i < ps.entry(p).numel; ++i) ps.grad(p).f32()[i] = float(6 * (i + 1));
    sync.mark_all_ready();
    sync.finish(3.0);
    for (int p = 0; p < 2; ++p)
      for (int64_t i = 0; i < ps.entry(p).numel; ++i)
        EXPECT_EQ(ps.grad(p).f32()[i], float(2 * (i + 1))) << "p" << p << " index " << i;
  }
  EXPECT_EQ(sync.stats().steps, 2);
}

using GradSyncDeathTest = ::testing::Test;

TEST(GradSyncDeathTest, ParameterNeverMarkedIsNamed) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  ParamStore ps;
  declare(ps, {4, 4, 4});
  SoloCommunicator solo;
  GradSync sync(ps, solo);
  sync.mark_ready(2);
  sync.mark_ready(0);
  EXPECT_DEATH(sync.finish(), "'p1' was never marked ready");
}

TEST(GradSyncDeathTest, ParameterMarkedTwiceIsNamed) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  ParamStore ps;
  declare(ps, {4, 4});
  SoloCommunicator solo;
  GradSync sync(ps, solo);
  sync.mark_ready(1);
  EXPECT_DEATH(sync.mark_ready(1), "'p1' marked ready twice");
}

}  // namespace
}  // namespace loom::test
