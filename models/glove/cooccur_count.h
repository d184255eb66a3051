#pragma once
// Counting for the co-occurrence build (internal to io/cooccur*.cpp): each of a rank's
// counting threads reads its own sub-shard and turns pair increments into sorted runs.
//
// Note [Dense block]
// Ids are ordered by frequency, so most increments fall on pairs of frequent words. As in
// GloVe's reference `cooccur`, pairs with (row + 1) * (col + 1) <= P are counted in place
// in a dense table (row r holds cols [0, min(V, P / (r + 1))), rows back to back); only
// the rest go through the sparse buffer (radix sort, then sorted runs). P is the largest
// product whose table fits the dense share of the budget. Each counting thread has its own
// table; the tables are summed once counting ends (integers, Note [Exact sums]) and the
// sum becomes one more sorted run, so dense and sparse entries meet in the same merges.
//
// Note [Counting threads]
// Thread t of rank r reads CorpusShard(r * T + t, W * T): shard boundaries do not depend on
// the world size (Note [Shard boundaries]) and a sub-shard that starts mid-line loads the
// preceding context, so W * T sub-shards count exactly what one reader would. The result
// does not depend on T or W because every sum is an integer.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/cooccur_runs.h"
#include "io/corpus_shard.h"
#include "io/vocab.h"

namespace loom::cooccur {

// Key layout: key = ((row % W) * rows_per_owner + row / W) * V + col, so keys sort by
// (owner, row, col) and owner q holds keys [q * rows_per_owner * V, (q+1) * ...).
struct KeyCodec {
  uint64_t vocab, world, rows_per_owner;
  uint64_t owner_span() const { return rows_per_owner * vocab; }
  uint64_t row_base(uint64_t row) const { return ((row % world) * rows_per_owner + row / world) * vocab; }
  void decode(uint64_t key, int32_t& row, int32_t& col) const {
    uint64_t q = key / owner_span(), rem = key % owner_span();
    row = static_cast<int32_t>((rem / vocab) * world + q);
    col = static_cast<int32_t>(rem % vocab);
  }
};

struct CountSetup {
  KeyCodec codec;
  int window = 15;
  bool symmetric = true;
  int threads = 1;
  size_t budget_bytes = 0;        // the rank's whole budget
  std::string spill_dir, tag;
  std::vector<uint64_t> bounds;   // owner segments of the key space
};

struct CountOutput {
  std::vector<std::unique_ptr<RunStore>> stores;   // one per thread; [0] also holds the dense run
  uint64_t unit = 1;                               // L = lcm(1..window)
  int64_t tokens = 0, increments = 0;              // this rank
  int64_t dense_increments = 0;                    // of which counted in the dense block
  uint64_t dense_entries = 0;                      // size of one dense table
};

// Counts rank's shard with setup.threads threads; logs progress every few seconds.
CountOutput count_pairs(const CorpusLayout& layout, const CorpusOptions& corpus, const Vocab& vocab,
                        int rank, int world, const CountSetup& setup);

// Resident set of this process now, in bytes (0 if unknown).
uint64_t current_rss_bytes();

}  // namespace loom::cooccur
