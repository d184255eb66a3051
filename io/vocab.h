#pragma once
// Vocabulary: tokens with their corpus counts, ordered by count descending, then token
// bytes ascending, so ids are identical for any world size. Built collectively: each rank
// counts its CorpusShard, counts are exchanged by token hash (alltoallv) and summed by the
// owning rank, min_count is applied there, and the survivors are gathered everywhere.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io/corpus_shard.h"

namespace loom {

class Communicator;

struct VocabOptions {
  int64_t min_count = 5;   // tokens seen fewer times are dropped
  int64_t max_vocab = 0;   // 0: no limit; else keep the most frequent (ties by bytes)
  int threads = 1;         // counting threads per rank, each on sub-shard (rank * threads + t,
                           // world * threads); the vocabulary does not depend on it
};

// Fast 64-bit hash of a token's bytes (stable across runs and machines).
uint64_t hash_token(std::string_view token);

// Open-addressing map token -> count; tokens are copied once into an arena, so counting a
// token already seen allocates nothing.
class TokenCounter {
 public:
  TokenCounter();
  void add(std::string_view token, int64_t count = 1);
  size_t size() const { return size_; }
  // Visits (token, count) in table order.
  template <typename F> void for_each(F&& f) const {
    for (const Slot& s : slots_)
      if (s.count != 0) f(std::string_view(arena_.data() + s.offset, s.length), s.count);
  }

 private:
  struct Slot { uint64_t hash = 0; uint64_t offset = 0; uint32_t length = 0; int64_t count = 0; };
  void grow();
  std::vector<Slot> slots_;   // (capacity), a power of two
  std::vector<char> arena_;
  size_t size_ = 0;
};

class Vocab {
 public:
  Vocab() = default;
  // Tokens in id order with their counts (already in vocabulary order).
  Vocab(std::vector<std::string> tokens, std::vector<int64_t> counts);

  int32_t size() const { return static_cast<int32_t>(tokens_.size()); }
  const std::string& token(int32_t id) const { return tokens_[static_cast<size_t>(id)]; }
  int64_t count(int32_t id) const { return counts_[static_cast<size_t>(id)]; }
  const std::vector<std::string>& tokens() const { return tokens_; }
  const std::vector<int64_t>& counts() const { return counts_; }
  // The id of `token`, or -1.
  int32_t find(std::string_view token) const;
  bool operator==(const Vocab& other) const { return tokens_ == other.tokens_ && counts_ == other.counts_; }

 private:
  std::vector<std::string> tokens_;
  std::vector<int64_t> counts_;
  std::vector<int32_t> index_;   // open addressing over ids, -1 empty; (capacity) power of two
};

struct VocabStats {
  int64_t tokens = 0;          // tokens read, all ranks
  int64_t distinct = 0;        // distinct tokens before min_count / max_vocab
  uint64_t utf8_replaced = 0;  // invalid sequences replaced, all ranks
  double seconds = 0;
  int64_t truncated = 0;       // tokens longer than corpus.max_token_bytes, cut to it, all ranks
};

// Collective. Every rank returns the same Vocab.
Vocab build_vocab(Communicator& comm, const CorpusLayout& layout, const CorpusOptions& corpus,
                  const VocabOptions& options, VocabStats* stats = nullptr);
Vocab build_vocab(Communicator& comm, const CorpusOptions& corpus, const VocabOptions& options);

// GloVe's vocab.txt: "token count\n" per line in id order (written to PATH.tmp, renamed).
void write_vocab_txt(const Vocab& vocab, const std::string& path);
Vocab read_vocab_txt(const std::string& path);   // DataError naming path:line if malformed
// Note [vocab.h5]
// The vocabulary as HDF5 (readable by h5py and h5dump, no loom needed):
//   /                attrs: format = "loom-vocab", format_version = 2
//   /vocab/tokens    (V,) variable-length UTF-8 strings, id order; attr crc32
//   /vocab/counts    (V,) int64 corpus counts; attr crc32
// The crc32 attributes follow the checkpoints' convention (io/checksum.h: the counts'
// little-endian bytes; the tokens per Note [CRC of string datasets]). format_version 1
// files (written before the checksums) have none: read_vocab_h5 still loads them and says
// that nothing was verified; `loom train` rewrites them, because the vocabulary stage's
// fingerprint names the version (launch/pipeline/pipeline_data.h). Written to PATH.tmp, renamed.
inline constexpr int64_t kVocabH5Version = 2;
void write_vocab_h5(const Vocab& vocab, const std::string& path);
// Reads and verifies a vocab.h5: DataError naming the file and dataset for a wrong format,
// mismatched shapes or a checksum that does not match; IoError if unreadable. *verified
// (optional) is false for a format_version 1 file, which has no checksums to verify.
Vocab read_vocab_h5(const std::string& path, bool* verified = nullptr);

}  // namespace loom
