// TokenWindows: the GPT data order over memory-mapped token shards (Note [Token windows]).
// Token k of the test streams is k itself (a vocabulary of 2^24, width 4), so a window's
// contents say exactly where it was read from.
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <numeric>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/token_windows.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

constexpr uint32_t kVocab = 1u << 24;

// Shards holding the positions 0..sum(sizes)-1 in order, one file per size.
std::shared_ptr<const TokenStream> position_stream(const test::TempDir& dir,
                                                   const std::vector<uint64_t>& sizes,
                                                   uint32_t vocab = kVocab) {
  std::vector<TokenShard> shards;
  uint64_t at = 0;
  for (size_t s = 0; s < sizes.size(); ++s) {
    const std::string path = dir.file("part-" + std::to_string(s) + ".tokens");
    TokenShardWriter w(path, vocab, 42);
    std::vector<uint32_t> ids(sizes[s]);
    for (uint64_t k = 0; k < sizes[s]; ++k) ids[k] = static_cast<uint32_t>((at + k) % vocab);
    at += sizes[s];
    w.append(ids);
    w.commit();
    shards.push_back(TokenShard::open(path));
  }
  return std::make_shared<const TokenStream>(std::move(shards));
}

TokenWindowsOptions shuffled(int64_t seq_len, uint64_t seed) {
  TokenWindowsOptions o;
  o.seq_len = seq_len;
  o.seed = seed;
  return o;
}

TEST(TokenStream, ConcatenatesShardsInOrderAcrossBoundariesAndEmptyShards) {
  test::TempDir dir;
  auto stream = position_stream(dir, {5, 0, 3, 7});
  ASSERT_EQ(stream->size(), 15u);
  std::vector<int32_t> out(15);
  stream->copy(0, out);
  for (int k = 0; k < 15; ++k) EXPECT_EQ(out[k], k) << "token " << k;
  std::vector<int32_t> mid(6);
  stream->copy(4, mid);   // crosses the empty shard and into the fourth
  for (int k = 0; k < 6; ++k) EXPECT_EQ(mid[k], 4 + k) << "token " << 4 + k;
}

TEST(TokenStream, ReadsTwoByteShards) {
  test::TempDir dir;
  auto stream = position_stream(dir, {1000, 2000}, 50257);
  std::vector<int32_t> out(10);
  stream->copy(995, out);
  for (int k = 0; k < 10; ++k) EXPECT_EQ(out[k], 995 + k);
}

TEST(TokenWindows, WindowsOverlapByOneTokenFromTheEpochOffset) {
  test::TempDir dir;
  auto stream = position_stream(dir, {400, 333});
  const int64_t t = 16;
  TokenWindows w(stream, 0, stream->size(), shuffled(t, 7));
  EXPECT_EQ(w.windows_per_epoch(), (733 - 1) / t - 1);
  std::vector<int32_t> win(t + 1);
  for (int64_t epoch = 0; epoch < 3; ++epoch) {
    const int64_t off = w.epoch_offset(epoch);
    ASSERT_GE(off, 0);
    ASSERT_LT(off, t);
    std::vector<int64_t> starts;
    for (int64_t i = 0; i < w.windows_per_epoch(); ++i) {
      const int64_t g = epoch * w.windows_per_epoch() + i;
      w.window(g, win.data());
      for (int64_t k = 0; k <= t; ++k) ASSERT_EQ(win[k], win[0] + k) << "window " << g << " token " << k;
      ASSERT_EQ((win[0] - off) % t, 0) << "window " << g << " starts off the epoch's grid";
      ASSERT_LE(win[t], 732);
      starts.push_back(win[0]);
    }
    std::sort(starts.begin(), starts.end());
    for (size_t i = 0; i < starts.size(); ++i)   // slot i starts at off + i*T: last token = next first
      EXPECT_EQ(starts[i], off + static_cast<int64_t>(i) * t) << "epoch " << epoch << " slot " << i;
  }
}

TEST(TokenWindows, PermutationIsABijectionForAnyCountAndDependsOnSeedAndEpoch) {
  test::TempDir dir;
  for (uint64_t n : {18u, 19u, 35u, 100u, 1001u, 5000u}) {
    auto stream = position_stream(dir, {n});
    TokenWindows w(stream, 0, n, shuffled(1, 3));
    const int64_t count = w.windows_per_epoch();
    for (int64_t epoch : {0, 1, 9}) {
      std::vector<int64_t> seen(count, 0);
      for (int64_t i = 0; i < count; ++i) {
        const int64_t s = w.slot(epoch, i);
        ASSERT_GE(s, 0);
        ASSERT_LT(s, count);
        ++seen[s];
      }
      for (int64_t s = 0; s < count; ++s) ASSERT_EQ(seen[s], 1) << "n " << n << " epoch " << epoch << " slot " << s;
    }
  }
  auto stream = position_stream(dir, {5000});
  TokenWindows a(stream, 0, 5000, shuffled(4, 11)), b(stream, 0, 5000, shuffled(4, 11));
  TokenWindows c(stream, 0, 5000, shuffled(4, 12));
  int same_seed = 0, other_seed = 0, other_epoch = 0, identity = 0, offsets_moved = 0;
  for (int64_t i = 0; i < a.windows_per_epoch(); ++i) {
    same_seed += a.slot(0, i) == b.slot(0, i);
    other_seed += a.slot(0, i) == c.slot(0, i);
    other_epoch += a.slot(0, i) == a.slot(1, i);
    identity += a.slot(0, i) == i;
  }
  for (int64_t e = 1; e < 20; ++e) offsets_moved += a.epoch_offset(e) != a.epoch_offset(0);
  EXPECT_EQ(same_seed, a.windows_per_epoch());
  EXPECT_LT(other_seed, 20) << "another seed gives nearly the same order";
  EXPECT_LT(other_epoch, 20) << "the next epoch repeats the order";
  EXPECT_LT(identity, 20) << "the order is barely shuffled";
  EXPECT_GT(offsets_moved, 5) << "window boundaries do not move between epochs";
  std::vector<int32_t> wa(5), wb(5);
  for (int64_t g : {0, 17, 1248, 4000}) {
    a.window(g, wa.data());
    b.window(g, wb.data());
    EXPECT_EQ(wa, wb) << "window " << g;
  }
}

TEST(TokenWindows, RankSlicesTileTheGlobalBatchAtEveryWorldSize) {
  for (int64_t batch = 1; batch <= 9; ++batch) {
    for (int world = 1; world <= 4; ++world) {
      for (int64_t step : {0, 1, 5}) {
        std::vector<int64_t> got;
        for (int r = 0; r < world; ++r) {
          WindowSlice s = rank_slice(step, batch, r, world);
          EXPECT_GE(s.count, batch / world);
          EXPECT_LE(s.count, batch / world + 1);
          for (int64_t k = 0; k < s.count; ++k) got.push_back(s.begin + k);
        }
        std::vector<int64_t> want(batch);
        std::iota(want.begin(), want.end(), step * batch);
        EXPECT_EQ(got, want) << "B " << batch << " W " << world << " step " << step;
      }
    }
  }
  // What each rank reads is the single process's batch, whatever the world size.
  test::TempDir dir;
  auto stream = position_stream(dir, {3000});
  TokenWindows w(stream, 0, 3000, shuffled(8, 5));
  const int64_t batch = 7;
  std::vector<int32_t> win(9);
  for (int64_t step = 0; step < 60; step += 13) {
    std::vector<int32_t> single;
    for (int64_t g = step * batch; g < (step + 1) * batch; ++g) {
      w.window(g, win.data());
      single.insert(single.end(), win.begin(), win.end());
    }
    for (int world : {2, 3}) {
      std::vector<int32_t> joined;
      for (int r = 0; r < world; ++r) {
        WindowSlice s = rank_slice(step, batch, r, world);
        for (int64_t g = s.begin; g < s.begin + s.count; ++g) {
          w.window(g, win.data());
          joined.insert(joined.end(), win.begin(), win.end());
        }
      }
      EXPECT_EQ(joined, single) << "step " << step << " world " << world;
    }
  }
}

TEST(TokenWindows, HeldOutIsTheEndOfTheStreamInOrderAndDisjointFromTraining) {
  test::TempDir dir;
  auto stream = position_stream(dir, {600, 400});
  TokenSplits s = split_token_windows(stream, 0.1, 10, 1);
  EXPECT_EQ(s.split, 900u);
  ASSERT_TRUE(s.heldout.has_value());
  std::vector<int32_t> win(11);
  for (int64_t g = 0; g < 3 * s.train.windows_per_epoch(); ++g) {
    s.train.window(g, win.data());
    ASSERT_LT(win[10], 900) << "training window " << g << " reads held-out tokens";
  }
  EXPECT_EQ(s.heldout->windows_per_epoch(), (100 - 1) / 10);
  for (int64_t j = 0; j < s.heldout->windows_per_epoch(); ++j) {
    s.heldout->window(j, win.data());
    EXPECT_EQ(win[0], 900 + 10 * j) << "held-out window " << j;
  }
  TokenSplits none = split_token_windows(stream, 0.0, 10, 1);
  EXPECT_FALSE(none.heldout.has_value());
  EXPECT_EQ(none.split, 1000u);
}

TEST(TokenWindows, TooSmallACorpusIsADataErrorSayingHowManyTokensAndNamingShards) {
  test::TempDir dir;
  auto stream = position_stream(dir, {20});
  try {
    TokenWindows w(stream, 0, 20, shuffled(32, 1));
    FAIL() << "20 tokens made windows of 33";
  } catch (const DataError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("20 tokens"), std::string::npos) << msg;
    EXPECT_NE(msg.find("seq_len + 1 = 33"), std::string::npos) << msg;
    EXPECT_NE(msg.find("part-0.tokens"), std::string::npos) << msg;
  }
  // Enough for training, too few held out: the held-out split names itself.
  auto bigger = position_stream(dir, {200});
  try {
    split_token_windows(bigger, 0.05, 16, 1);
    FAIL() << "10 held-out tokens made a window of 17";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("held-out"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("10 tokens"), std::string::npos) << e.what();
  }
  // Exactly one window fits: it is used, with offsets within the slack.
  TokenWindows one(stream, 0, 20, shuffled(17, 1));
  EXPECT_EQ(one.windows_per_epoch(), 1);
  for (int64_t e = 0; e < 10; ++e) EXPECT_LE(one.epoch_offset(e), 2);
}

}  // namespace
}  // namespace loom
