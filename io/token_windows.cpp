#include "io/token_windows.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/rng.h"

namespace loom {
namespace {

constexpr int kFeistelRounds = 6;

// Bits per half: the smallest h with 4^h >= n (at least 1).
int feistel_half_bits(int64_t n) {
  int h = 1;
  while (h < 32 && (uint64_t{1} << (2 * h)) < static_cast<uint64_t>(n)) ++h;
  return h;
}

}  // namespace

// ---- TokenStream --------------------------------------------------------------------

TokenStream::TokenStream(std::vector<TokenShard> shards) : shards_(std::move(shards)) {
  starts_.reserve(shards_.size() + 1);
  uint64_t at = 0;
  for (const TokenShard& s : shards_) {
    starts_.push_back(at);
    at += s.size();
    vocab_size_ = std::max(vocab_size_, s.info().vocab_size);
  }
  starts_.push_back(at);
}

void TokenStream::copy(uint64_t begin, std::span<int32_t> out) const {
  LOOM_ASSERT(begin + out.size() <= size(), "TokenStream::copy past the end");
  // The shard holding `begin`: the last start <= begin (empty shards are skipped over).
  size_t s = static_cast<size_t>(std::upper_bound(starts_.begin(), starts_.end() - 1, begin) -
                                 starts_.begin()) - 1;
  size_t done = 0;
  while (done < out.size()) {
    const TokenShard& shard = shards_[s];
    const uint64_t local = begin + done - starts_[s];
    const size_t n = static_cast<size_t>(std::min<uint64_t>(shard.size() - local, out.size() - done));
    std::span<const uint16_t> u16 = shard.tokens_u16();
    if (!u16.empty()) {
      for (size_t k = 0; k < n; ++k) out[done + k] = static_cast<int32_t>(u16[local + k]);
    } else {
      std::span<const uint32_t> u32 = shard.tokens_u32();
      for (size_t k = 0; k < n; ++k) out[done + k] = static_cast<int32_t>(u32[local + k]);
    }
    done += n;
    ++s;
  }
}

std::string TokenStream::file_list() const {
  constexpr size_t kShown = 4;
  std::string out;
  for (size_t i = 0; i < shards_.size() && i < kShown; ++i)
    out += (i ? ", " : "") + shards_[i].path();
  if (shards_.size() > kShown) out += " and " + std::to_string(shards_.size() - kShown) + " more";
  return shards_.empty() ? "no shard files" : out;
}

// ---- TokenWindows -------------------------------------------------------------------

TokenWindows::TokenWindows(std::shared_ptr<const TokenStream> stream, uint64_t begin, uint64_t end,
                           const TokenWindowsOptions& options)
    : stream_(std::move(stream)), begin_(begin), end_(end), seq_len_(options.seq_len),
      order_(options.order) {
  LOOM_ASSERT(stream_ != nullptr && begin <= end && end <= stream_->size(), "TokenWindows range");
  LOOM_CHECK(seq_len_ >= 1, ConfigError, "seq_len must be at least 1, got " + std::to_string(seq_len_));
  const uint64_t n = end - begin;
  const uint64_t need = static_cast<uint64_t>(seq_len_) + 1;
  LOOM_CHECK(n >= need, DataError,
             "the " + options.split_name + " tokens are too few for one window: " +
                 std::to_string(n) + " tokens, and a window needs seq_len + 1 = " +
                 std::to_string(need) + " (token shards: " + stream_->file_list() +
                 "); use a larger corpus, a smaller seq_len or another heldout_fraction");
  const int64_t t = seq_len_;
  const int64_t fit = static_cast<int64_t>((n - 1) / static_cast<uint64_t>(t));   // >= 1
  if (order_ == WindowOrder::kSequential) {
    windows_ = fit;
    max_offset_ = 0;
  } else if (fit >= 2) {
    windows_ = fit - 1;
    max_offset_ = t - 1;   // (n - 1) - windows_ * t >= t
  } else {
    windows_ = 1;
    max_offset_ = static_cast<int64_t>(n - 1) - t;
  }
  shuffle_key_ = rng_key(options.seed, 0, RngPurpose::kShuffle);
  offset_key_ = rng_key(options.seed, 0, RngPurpose::kData);
  feistel_bits_ = feistel_half_bits(windows_);
}

int64_t TokenWindows::epoch_offset(int64_t epoch) const {
  if (max_offset_ == 0) return 0;
  const PhiloxBlock b = philox(offset_key_, static_cast<uint64_t>(epoch), 0);
  const uint64_t r = (uint64_t{b[0]} << 32) | b[1];
  return static_cast<int64_t>(r % static_cast<uint64_t>(max_offset_ + 1));
}

// Note [Permutation without a table].
int64_t TokenWindows::slot(int64_t epoch, int64_t i) const {
  LOOM_ASSERT(i >= 0 && i < windows_, "window position outside the epoch");
  if (order_ == WindowOrder::kSequential || windows_ == 1) return i;
  const int h = feistel_bits_;
  const uint64_t mask = (uint64_t{1} << h) - 1;
  uint64_t x = static_cast<uint64_t>(i);
  do {
    uint64_t left = x >> h, right = x & mask;
    for (uint64_t round = 0; round < kFeistelRounds; ++round) {
      const PhiloxBlock b = philox(shuffle_key_, static_cast<uint64_t>(epoch), (round << 32) | right);
      const uint64_t f = ((uint64_t{b[0]} << 32) | b[1]) & mask;
      const uint64_t next = left ^ f;
      left = right;
      right = next;
    }
    x = (left << h) | right;
  } while (x >= static_cast<uint64_t>(windows_));
  return static_cast<int64_t>(x);
}

uint64_t TokenWindows::window_start(int64_t global_index) const {
  LOOM_ASSERT(global_index >= 0, "negative window index");
  const int64_t epoch = global_index / windows_;
  const int64_t i = global_index % windows_;
  return begin_ + static_cast<uint64_t>(epoch_offset(epoch) + slot(epoch, i) * seq_len_);
}

void TokenWindows::window(int64_t global_index, int32_t* out) const {
  stream_->copy(window_start(global_index), {out, static_cast<size_t>(seq_len_ + 1)});
}

// ---- splits and slices ----------------------------------------------------------------

TokenSplits split_token_windows(std::shared_ptr<const TokenStream> stream, double heldout_fraction,
                                int64_t seq_len, uint64_t seed) {
  LOOM_CHECK(heldout_fraction >= 0 && heldout_fraction < 1, ConfigError,
             "heldout_fraction must be in [0, 1), got " + std::to_string(heldout_fraction));
  const uint64_t n = stream->size();
  const uint64_t held = static_cast<uint64_t>(std::floor(static_cast<double>(n) * heldout_fraction));
  const uint64_t split = n - held;
  TokenWindowsOptions train_opt;
  train_opt.seq_len = seq_len;
  train_opt.seed = seed;
  train_opt.order = WindowOrder::kShuffled;
  train_opt.split_name = "training";
  TokenSplits out{TokenWindows(stream, 0, split, train_opt), std::nullopt, split};
  if (heldout_fraction > 0) {
    TokenWindowsOptions held_opt = train_opt;
    held_opt.order = WindowOrder::kSequential;
    held_opt.split_name = "held-out (the last " + std::to_string(heldout_fraction) + " of the stream)";
    out.heldout.emplace(std::move(stream), split, n, held_opt);
  }
  return out;
}

WindowSlice rank_slice(int64_t step, int64_t global_batch, int rank, int world) {
  LOOM_ASSERT(world >= 1 && rank >= 0 && rank < world && global_batch >= 0 && step >= 0,
              "rank_slice arguments");
  const int64_t base = global_batch / world, extra = global_batch % world;
  WindowSlice s;
  s.count = base + (rank < extra ? 1 : 0);
  s.begin = step * global_batch + rank * base + std::min<int64_t>(rank, extra);
  return s;
}

}  // namespace loom
