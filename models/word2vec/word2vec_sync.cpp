// Word2Vec's replica state across ranks: the synchronisation at the end of every step and
// restore() from a checkpoint.
//
// Note [word2vec synchronisation]
// Each rank trains plain SGD on its own shard, so within a step the replicas drift apart;
// at the end of every step (word2vec.step_words words of the largest shard) they are made
// equal again, which also makes every step boundary a consistent state to checkpoint.
// Candidates (word2vec.sync):
//   delta   - every rank keeps the parameters of the last sync (base); at the sync
//             x <- base + sum over ranks (x_r - base): every rank's updates are applied,
//             as if one process had made them (Hogwild across ranks with the step as its
//             delay). The learning-rate schedule counts all ranks' words, so the total
//             step length matches one process's.
//   average - x <- mean over ranks of x_r (model averaging): each rank's change is divided
//             by the world size, so a run with W ranks moves 1/W as far per word.
// Both are one allreduce of all parameters (syn0, syn1neg, syn1: 2 V D floats) per step,
// delta fused per piece with its two passes over the arrays (Note [Fused delta sync] in
// models/replica_sync.h). Syncing only the rows a step touched would cut the volume
// further; with the fused sync a wiki17m-sized sync (55 MB) costs ~20 ms, so the dense
// allreduce is kept. Measured: on the planted corpus see the README table
// (tests/models/test_word2vec_train.cpp MeasureSyncSchemes); the period on wiki17m
// (skip-gram, issue 7's settings, 2 ranks x 1 thread, analogy total for seeds 1234 / 7 /
// 3 / 11; the figures vary by up to a point from seed to seed, so one run says little):
//   step_words 2^20 (9 syncs per epoch)    36.98 / 36.78 / 36.73 / 36.63 %
//   step_words 2^18 (33 syncs per epoch)   37.59 / 38.70 / 37.62 %
//   step_words 2^17 (65 syncs per epoch)   36.69 / 38.53 %
//   one rank (no sync)                     37.24 %
// Default: delta, step_words = 2^18. With the sync written as three passes, 2^18 cost
// 154.5 s of wall time against 131.8 s at 2^20; fused, 126.7 s.
// Not solved: CBOW at 2 ranks ends below one rank on average (seeds 1234 / 7 / 3: 34.46 /
// 36.36 / 35.18 % at 2 x 1 against 36.13 / 35.58 / 36.67 % at 1 x 1); with seed 1234 the
// period does not matter (2^20 .. 2^14: 34.07 - 34.46 %). Averaging (27.04 %), a per-row
// mean over the ranks that changed the row (26.97 %; with syn0 still summed 31.15 %) and
// alpha 0.035 / 0.075 (32.44 / 35.13 %) were measured and rejected.
#include <cstring>

#include "core/error.h"
#include "dist/communicator.h"
#include "models/replica_sync.h"
#include "models/word2vec/word2vec.h"

namespace loom {

// Collective; called by every rank at the end of every step when world > 1.
void Word2Vec::synchronize() {
  const int64_t n = params_.total_elements();
  float* x = params_.values().f32();
  if (options_.sync == Word2VecSync::kAverage) {
    comm_.allreduce(Tensor::of(x, n), ReduceOp::kAvg);
    return;
  }
  float* base = static_cast<float*>(base_.data());
  for (const SyncSegment& g : sync_segments_) {
    if (g.average)
      average_allreduce(comm_, x + g.offset, base + g.offset, g.length, options_.threads);
    else
      delta_allreduce(comm_, x + g.offset, base + g.offset, g.length, options_.threads);
  }
  LOOM_ASSERT(sync_segments_.empty() || sync_segments_.back().offset + sync_segments_.back().length == n,
              "word2vec: the sync segments do not cover the parameters");
}

// The Trainer has read the parameters. Same world size and step count per epoch: the
// cursor and the RNG streams continue exactly where they were (bit-exact with threads = 1;
// with another thread count the streams restart from the saved cursor's position 0).
// Otherwise the shards are different ones; the run continues in the same epoch at the same
// fraction of it (slice * S_new / S_old, rounded down) and total_steps() is adjusted so
// that the remaining epochs are complete.
void Word2Vec::restore(const CheckpointReader& reader, int64_t step) {
  int64_t words = 0;
  const std::vector<uint64_t> data = reader.read_state("data", &words);
  LOOM_CHECK(words == 4, DataError,
             reader.path() + ": /state/data has " + std::to_string(words) + " words per rank, word2vec writes 4");
  const int saved_world = reader.meta().world_size;
  const bool same_world = saved_world == comm_.size();
  const size_t row = same_world ? static_cast<size_t>(comm_.rank()) : 0;
  const int64_t saved_epoch = static_cast<int64_t>(data[row * 4 + 0]);
  const int64_t saved_slice = static_cast<int64_t>(data[row * 4 + 1]);
  const int64_t saved_steps = static_cast<int64_t>(data[row * 4 + 2]);
  LOOM_CHECK(saved_steps > 0 && saved_slice < saved_steps, DataError,
             reader.path() + ": /state/data holds an impossible cursor");
  epoch_ = saved_epoch;
  const bool exact = same_world && saved_steps == steps_per_epoch_ &&
                     static_cast<int64_t>(data[row * 4 + 3]) == data_.words();
  if (exact) {
    slice_ = saved_slice;
    LOOM_CHECK(epoch_ * steps_per_epoch_ + slice_ == step, DataError,
               reader.path() + ": /state/data cursor does not match step " + std::to_string(step));
    int64_t per_rank = 0;
    const std::vector<uint64_t> rng = reader.read_state("rng", &per_rank);
    if (per_rank == static_cast<int64_t>(threads_.size()))
      seek_rng(std::vector<uint64_t>(rng.begin() + static_cast<int64_t>(row) * per_rank,
                                     rng.begin() + static_cast<int64_t>(row + 1) * per_rank));
  } else {
    slice_ = saved_slice * steps_per_epoch_ / saved_steps;
  }
  total_steps_ = step + (options_.epochs * steps_per_epoch_ - (epoch_ * steps_per_epoch_ + slice_));
  words_seen_ = reader.meta().tokens_seen;
  if (base_.data() != nullptr) std::memcpy(base_.data(), params_.values().data(), base_.size());
}

}  // namespace loom
