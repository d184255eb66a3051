#pragma once
// The GPT data order over a tokenized corpus: fixed-length windows read straight out of
// memory-mapped token shards (io/token_shard.h), in one global order that depends on the
// seed alone (DESIGN.md, "Transformers read data by one global order").
//
// Note [Token windows]
// The token stream is the concatenation of the shards in the order given (the corpus
// order; `loom tokenize` writes it so whatever the world size). A TokenWindows covers a
// range [begin, end) of it, N = end - begin tokens, with T = seq_len:
//   * a window is T + 1 consecutive tokens (inputs = the first T, targets = the last T);
//     window i of an epoch starts at begin + offset_e + i * T, so consecutive windows
//     overlap by one token and every token after the first is a target exactly once;
//   * shuffled order (training): offset_e in [0, T) is drawn from (seed, epoch), so window
//     boundaries move between epochs; windows_per_epoch W = floor((N - 1) / T) - 1 (one
//     window is given up so that every offset fits), or 1 when only one fits (then
//     offset_e in [0, N - 1 - T]). The W windows of epoch e are visited in a permutation
//     drawn from (seed, epoch) (Note [Permutation without a table]);
//   * sequential order (held-out): offset 0, W = floor((N - 1) / T), window j is the j-th,
//     the same every epoch.
// global_index counts windows across epochs: epoch = global_index / W, and the position
// within the epoch is global_index % W. Nothing depends on the world size: a rank takes
// its slice of each global batch with rank_slice().
//
// Note [Permutation without a table]
// The permutation of epoch e is a 6-round Feistel network over the smallest even number
// of bits b with 2^b >= W, each round function one Philox block keyed by (seed, kShuffle)
// with counter (e, round, half), walked in cycles until the value falls below W (at most
// 4x expected steps, since 2^b < 4W). It is a bijection on [0, W) for any W, costs O(1)
// memory and about a microsecond per window, needs no allocation ever, and any epoch's
// order is computed directly: window() is const and thread-safe.
//
// The held-out split (split_token_windows) is the last heldout_fraction of the stream by
// token position, as nanoGPT holds out the end of its text: training windows come from
// [0, split), held-out windows from [split, N); they share no token.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "io/token_shard.h"

namespace loom {

// Token shards read as one stream, in order. Read-only and shared by every TokenWindows.
class TokenStream {
 public:
  explicit TokenStream(std::vector<TokenShard> shards);
  TokenStream(TokenStream&&) noexcept = default;
  TokenStream& operator=(TokenStream&&) noexcept = default;

  uint64_t size() const { return starts_.back(); }
  size_t shard_count() const { return shards_.size(); }
  const TokenShard& shard(size_t i) const { return shards_.at(i); }
  uint32_t vocab_size() const { return vocab_size_; }   // the largest shard vocabulary
  // out[k] = token begin + k, across shard boundaries; begin + out.size() <= size().
  void copy(uint64_t begin, std::span<int32_t> out) const;
  // The shard files for messages: "a.tokens, b.tokens" (the first few, then "and N more").
  std::string file_list() const;

 private:
  std::vector<TokenShard> shards_;
  std::vector<uint64_t> starts_;   // (shards + 1) stream offset of each shard, then size()
  uint32_t vocab_size_ = 0;
};

enum class WindowOrder : uint8_t { kShuffled, kSequential };

struct TokenWindowsOptions {
  int64_t seq_len = 1024;               // T: a window holds T + 1 tokens
  uint64_t seed = 0;                    // run.seed
  WindowOrder order = WindowOrder::kShuffled;
  std::string split_name = "training";  // names the split in errors ("held-out")
};

class TokenWindows {
 public:
  // Windows over stream tokens [begin, end). DataError (naming the tokens there, the tokens
  // a window needs and the shard files) when fewer than seq_len + 1 tokens.
  TokenWindows(std::shared_ptr<const TokenStream> stream, uint64_t begin, uint64_t end,
               const TokenWindowsOptions& options);

  int64_t seq_len() const { return seq_len_; }
  int64_t windows_per_epoch() const { return windows_; }
  uint64_t begin() const { return begin_; }
  uint64_t end() const { return end_; }
  uint64_t tokens() const { return end_ - begin_; }
  const TokenStream& stream() const { return *stream_; }

  // offset_e: where epoch e's first window starts, relative to begin().
  int64_t epoch_offset(int64_t epoch) const;
  // The window slot (0..W-1, in stream order) visited at position i of epoch e.
  int64_t slot(int64_t epoch, int64_t i) const;
  // Stream offset of the first token of window global_index.
  uint64_t window_start(int64_t global_index) const;
  // Writes the seq_len + 1 tokens of window global_index (any value >= 0) into out.
  void window(int64_t global_index, int32_t* out /* (seq_len + 1) */) const;

 private:
  std::shared_ptr<const TokenStream> stream_;
  uint64_t begin_ = 0, end_ = 0;
  int64_t seq_len_ = 0;
  int64_t windows_ = 0;        // W
  int64_t max_offset_ = 0;     // offsets are drawn from [0, max_offset_]
  WindowOrder order_ = WindowOrder::kShuffled;
  uint64_t shuffle_key_ = 0;   // rng_key(seed, 0, kShuffle)
  uint64_t offset_key_ = 0;    // rng_key(seed, 0, kData)
  int feistel_bits_ = 0;       // b / 2 bits per half
};

struct TokenSplits {
  TokenWindows train;                   // shuffled, [0, split)
  std::optional<TokenWindows> heldout;  // sequential, [split, N); none when fraction is 0
  uint64_t split = 0;                   // first held-out token
};

// split = N - floor(N * heldout_fraction). DataError when either part is smaller than one
// window (heldout_fraction in [0, 1): ConfigError otherwise).
TokenSplits split_token_windows(std::shared_ptr<const TokenStream> stream, double heldout_fraction,
                                int64_t seq_len, uint64_t seed);

// Note [Rank slices]
// Step s's global batch is windows [s * B, (s + 1) * B). Rank r of W takes a contiguous
// block of it: the first B % W ranks take floor(B / W) + 1 windows, the others floor(B / W),
// in rank order - so the union over ranks is the global batch in order, at any world size,
// and a rank's slice may be empty when B < W. (Weight losses by count when averaging.)
struct WindowSlice {
  int64_t begin = 0;   // global index of the rank's first window
  int64_t count = 0;
};
WindowSlice rank_slice(int64_t step, int64_t global_batch, int rank, int world);

}  // namespace loom
