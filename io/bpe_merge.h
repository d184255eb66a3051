#pragma once
// The heart of byte-level BPE: the merge table (pair of ids -> rank, result) and the loop
// that merges one pre-tokenized piece. Used by BpeTokenizer; public for its tests.
//
// Note [Merge order]
// Within a piece the adjacent pair of lowest rank merges first; where that pair occurs more
// than once, the leftmost occurrence first (its partner is then consumed, so "aaa" with
// merge "a a" gives "aa a"). This is Hugging Face `tokenizers`' order (a queue keyed by
// (rank, position)) and, for merges files produced by training, GPT-2's original order
// (merge every occurrence of the best pair left to right) too. Short pieces rescan an
// array of pair ranks (cheap, no heap); long pieces use a priority queue over a linked
// list, so a 100 kB run of punctuation is O(n log n), not O(n^2). Both give the same ids.
#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "io/bpe_files.h"

namespace loom {

class BpeMergeTable {
 public:
  static constexpr uint32_t kNoRank = 0xFFFFFFFFu;
  struct Hit {
    uint32_t rank;     // kNoRank: the pair does not merge
    uint32_t result;
  };

  // Rank r = merges[r]; a pair listed twice keeps its last rank.
  explicit BpeMergeTable(std::span<const BpeMerge> merges);

  Hit find(uint32_t left, uint32_t right) const {
    const uint64_t key = (uint64_t{left} << 32) | right;
    for (size_t i = slot_of(key);; i = (i + 1) & mask_) {
      const Entry& e = entries_[i];
      if (e.key == key) return {e.rank, e.result};
      if (e.key == kEmpty) return {kNoRank, 0};
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~uint64_t{0};
  struct Entry {
    uint64_t key;
    uint32_t rank;
    uint32_t result;
  };
  size_t slot_of(uint64_t key) const {
    return static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> shift_);
  }
  std::vector<Entry> entries_;   // open addressing, linear probing, load <= 1/2
  size_t mask_ = 0;
  int shift_ = 64;
};

// Merges one piece in place: `ids` holds the piece's byte-token ids on entry and its BPE
// tokens on return. Reuses its scratch buffers across calls; one per thread.
class BpeWordMerger {
 public:
  static constexpr size_t kHeapFrom = 48;   // pieces of this many bytes and more use the heap
  void merge(const BpeMergeTable& table, std::vector<uint32_t>& ids, size_t heap_from = kHeapFrom);

 private:
  void merge_short(const BpeMergeTable& table, std::vector<uint32_t>& ids);
  void merge_long(const BpeMergeTable& table, std::vector<uint32_t>& ids);
  struct Candidate {
    uint32_t rank;
    uint32_t pos;   // index of the pair's left symbol (its first byte in the piece)
  };
  std::vector<uint32_t> ranks_;        // (n - 1) short path: rank of pair (i, i+1)
  std::vector<int32_t> prev_, next_;   // (n) long path: linked list over positions
  std::vector<Candidate> heap_;        // long path: min-heap by (rank, pos)
  std::vector<uint8_t> dead_;          // (n) long path
};

}  // namespace loom
