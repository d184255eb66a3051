#pragma once
// Co-occurrence matrix with GloVe's definition (its reference `cooccur` counts this way):
// out-of-vocabulary tokens are dropped before windowing; within a line every pair of kept
// tokens at distance d <= window adds 1/d to (earlier, later) and, when symmetric, also to
// (later, earlier); the context resets at every line end (and file end).
//
// Collective. Each rank counts its CorpusShard (with options.threads threads) into a dense
// block for frequent pairs and sorted runs for the rest (spilled to disk over the memory
// budget; Note [Dense block] in models/glove/cooccur_count.h), the runs are merged and exchanged
// with alltoallv so that rank r owns the rows with row % size == r, and each owner sums
// duplicates (Note [Exact sums]), shuffles its partition with Rng(seed, rank, kShuffle)
// and writes it. Rank 0 logs progress every few seconds and a phase summary at the end.
//
// Note [Exact sums]
// Every increment is 1/d with d <= window, so counts are kept as integers in units of
// 1/L, L = lcm(1..window): each increment adds L/d exactly. Integer sums do not depend on
// order, so the value (sum / L, rounded once to double) is identical for any world size,
// any spill pattern and any merge order. window <= 40 keeps L below 2^53; a sum that would
// overflow 64 bits is reported as a DataError.
#include <cstdint>
#include <string>
#include <vector>

#include "io/corpus_shard.h"
#include "io/vocab.h"

namespace loom {

class Communicator;

struct CooccurOptions {
  int window = 15;               // 1..40
  bool symmetric = true;         // false: left context only, entries (context, word)
  double memory_gb = 4.0;        // per-rank budget for counting, runs and the partition
  std::string spill_dir;         // sorted runs over budget go here; empty: out_dir
  uint64_t seed = 1;             // shuffle of each partition
  int threads = 1;               // counting threads per rank (Note [Counting threads] in
                                 // models/glove/cooccur_count.h); the result does not depend on it
};

// 16 bytes, the layout of GloVe's CREC record but with 0-based ids.
struct CooccurEntry {
  int32_t row = 0;
  int32_t col = 0;
  double value = 0;
};

struct CooccurStats {
  int64_t tokens = 0;        // tokens read (all ranks)
  int64_t increments = 0;    // pair increments counted (all ranks)
  int64_t spills = 0;        // runs written to disk (all ranks)
  int64_t nnz = 0;           // non-zeros of the whole matrix
  double seconds = 0;
  double peak_rss_gb = 0;    // this rank's peak resident set
  // This rank's phases, seconds: counting, exchange (merges and alltoallv rounds, into the
  // partition), shuffle, write of the partition file.
  double count_seconds = 0, exchange_seconds = 0, shuffle_seconds = 0, write_seconds = 0;
};

struct CooccurResult {
  // This rank's partition: rows with row % num_partitions == partition, every (row, col)
  // once, in a deterministic shuffled order (from seed, rank). Ready for training.
  std::vector<CooccurEntry> entries;
  int partition = 0;
  int num_partitions = 1;
  std::string h5_path;       // where this partition was written ("" if not written)
  CooccurStats stats;
};

// HDF5 partition file: attrs format="loom-cooccur", format_version=1, partition,
// num_partitions, window, symmetric, seed, nnz_total, vocab_size; dataset /cooccur
// (compound {row int32, col int32, value float64}, nnz of the partition); /vocab/tokens,
// /vocab/counts. Written to PATH.tmp, renamed.
void write_cooccur_h5(const std::string& path, const CooccurResult& result, const Vocab& vocab,
                      const CooccurOptions& options);
// Reads /cooccur of a partition file (IoError/DataError naming the file and dataset).
std::vector<CooccurEntry> read_cooccur_h5(const std::string& path);

// Collective: GloVe's cooccurrence.bin, records {int32 word1, int32 word2, float64 value}
// with 1-based ids, partitions in rank order; each rank writes its own byte range.
void export_glove_cooccurrence(Communicator& comm, const CooccurResult& result, const std::string& path);

}  // namespace loom
