// Word2Vec's replica state across ranks: the synchronisation at the end of every step and
// restore() from a checkpoint.
//
// Note [word2vec synchronisation]
// Each rank trains plain SGD on its own shard, so within a step the replicas drift apart;
// at the end of every step (word2vec.step_words words of the largest shard) they are made
// equal again - all but the rare rows (below), which wait for every rare_every-th step;
// those steps are the consistent states a checkpoint may hold (checkpoint_ready()).
// Candidates (word2vec.sync):
//   delta   - every rank keeps the parameters of the last sync (base); at the sync
//             x <- base + sum over ranks (x_r - base): every rank's updates are applied,
//             as if one process had made them (Hogwild across ranks with the step as its
//             delay). The learning-rate schedule counts all ranks' words, so the total
//             step length matches one process's.
//   average - x <- mean over ranks of x_r (model averaging): each rank's change is divided
//             by the world size, so a run with W ranks moves 1/W as far per word.
// Hot rows (word2vec.average_above, with delta): summing is right for a row that each rank
// moves a little, but a row that every rank updates hundreds of times per step (the
// most frequent words) is pulled by each rank to nearly the same place, and the sum then
// overshoots: x <- base + W (x* - base) puts it as far beyond x* as it started before
// it, so with 2 ranks it oscillates around x* and with 3 it diverges. Those rows are
// averaged instead. A word is hot when it is expected to be kept (after subsampling) at
// least `average_above` times in one rank's step (its count share x keep probability x
// words per rank and step); the vocabulary is ordered by count, so the hot words are the
// rows [0, hot) of syn0 and syn1neg, and with hs the inner nodes visited that often are
// the last rows of syn1 (the nodes near the root). The plan (segments of the parameter
// buffer, averaged or summed) is made once in plan_sync().
// Sums: x <- sum_r x_r - (W - 1) base. When every rank runs on one host they skip MPI:
// each rank sums a fixed share of the elements, reading the other ranks' copies directly,
// and then copies the other ranks' shares of the result from them (Note [Owner-computes
// sync], Note [Peer memory]); else
// sum_allreduce (one pass over the arrays after the allreduce; models/replica_sync.h),
// pieces of 1 MiB. The two give the same bits at 2 ranks.
// Measured (tests/models/test_word2vec_train.cpp, LOOM_W2V_SYNC / LOOM_W2V_STEP_WORDS /
// LOOM_W2V_AVERAGE_ABOVE, planted corpus: see the README table). 3 ranks at a period of
// 16,384 words diverged with every row summed (skip-gram NS 0.53, loss 14.0; CBOW NS 0.94,
// loss 6.9; HS 0.59 / 0.79); averaging hot rows at average_above 30 brought them to 0.958 /
// 0.994 (loss 2.39 / 1.97; HS 0.875 / 0.930), at 10 too many rows were averaged (0.72 /
// 0.95). The default (100 for CBOW, off for skip-gram) averages no planted word at these
// periods, only the Huffman nodes nearest the root with hs.
// On wiki17m (issue 7's settings, 2 ranks x 1 thread, analogy total; the final-epoch
// training loss varies far less from seed to seed than the analogy figure, which moves by
// up to 2 points, so both are given):
//   skip-gram, period (every row summed)   seeds 1234 / 7 / 3 / 11
//     step_words 2^20 (9 syncs per epoch)    36.98 / 36.78 / 36.73 / 36.63 %
//     step_words 2^18 (33 syncs per epoch)   37.59 / 38.70 / 37.62 %, loss 2.228 - 2.276
//     step_words 2^17 (65 syncs per epoch)   36.69 / 38.53 %, loss 2.219
//     one rank (no sync)                     37.24 %, loss 2.209
//   skip-gram at 2^18 with hot rows averaged (100: the 83 most frequent words):
//     36.83 / 38.56 / 37.28 %, loss 2.217: the loss is closer to one rank's, the analogy
//     lower on every seed, so skip-gram sums every row (average_above -1 = 0 for it).
//   CBOW at 2^18, every row summed: 34.46 / 36.36 / 35.18 / 35.54 % (mean 35.39), loss
//     1.736 - 1.746; one rank 36.13 / 35.58 / 36.67 / 35.51 % (mean 35.97), loss 1.723 -
//     1.724. Shorter periods close the loss gap (2^16: 1.721, 2^14: 1.723) but cost a sync
//     per 16 k words (2^14: 255 s instead of 73 s) and seed 1234 stayed at 34.4 %.
//   CBOW at 2^18 with the rows of the F most frequent words averaged, seed 1234:
//     F = 30: 34.89 %, loss 1.7223; 100: 35.34 %, 1.7210; 300: 35.35 %, 1.7229;
//     1000: 34.08 %, 1.7316 (none: 34.46 %, 1.7377; one rank 36.13 %, 1.7229).
//   Default for CBOW: average_above 100 (83 words at 2^18 on wiki17m, 2 ranks):
//     35.49 / 36.27 / 35.67 / 35.12 % (mean 35.64), loss 1.7202 - 1.7210: the loss
//     below one rank's, the analogy mean 0.33 points below it, within the seed spread.
//   Longer periods with hot rows do not pay: 2^20 (998 hot words) 33.20 / 34.70 %, loss
//   1.7356; the hot rows synchronised 4x per step of 2^20 (the rest once) 34.23 %, loss
//   1.811; 2x per step of 2^19: 34.70 %, 1.7332 (seed 1234; implemented, measured, removed).
//   Also measured and rejected (CBOW 2 x 1, seed 1234): averaging every row (27.04 %), a
//   per-row mean over the ranks that changed the row (26.97 %), alpha 0.035 / 0.075
//   (32.44 / 35.13 %), each row's sum scaled by 1 / (1 + a (W - 1)) with a the alignment
//   of the ranks' changes of that row (34.07 %, loss 1.7306), and steps of 2^16 with the
//   rows past the 2000 most frequent words summed every 4th step and average_above 25,
//   i.e. the frequent rows 4x as often: 35.06 %, 1.7210, 3.16 s of syncs (660 syncs cost
//   more than they save).
// Rare rows (word2vec.rare_below, rare_every): the rows of words expected to be kept fewer
// than rare_below times in one rank's step are summed only after every rare_every-th step
// (and the last); the rest after every step. Such a row changes little per step, and its
// changes are not lost in between: x_r - base keeps them until the next full sum (the
// touched map of syn0 keeps its marks until then too). Between full sums the replicas
// differ in those rows, so checkpoint_ready() is false there and the Trainer saves (and
// stops on a signal) at the next full sum instead: resumed runs stay bit-exact and a run's
// result does not depend on when checkpoints were written. Epoch ends need not be full
// sums; the per-epoch analogy figure of the log is then rank 0's replica.
// Measured, CBOW 2 x 1 on wiki17m at 2^18, 2.6 GHz host (F = the rows before the rare
// ones; rare_below 5 gives F 4,9xx there):
//   sum of syncs per rank, 165 steps: every row every step 2.90 s through MPI, 1.64 s in
//   peer memory (owners writing into the others); F 5000, every 4th: 0.60 s; every 8th:
//   0.36 s; F 2000 every 8th 0.31 s; the default (rare_below 5, every 4th, the others
//   pulling the owners' results) 0.68-0.71 s.
//   seeds 1234 / 1 / 2 / 5 / 13, analogy and final loss:
//     one rank            36.14 / 35.38 / 34.92 / 35.53 / 35.84 % (mean 35.56), loss 1.7229 - 1.7236
//     every step          35.49 / 35.36 / 35.59 / 35.42 / 36.16 % (mean 35.60), loss 1.7198 - 1.7208
//     F 5000, every 4th   35.33 / 35.19 / 35.49 / 35.57 / 36.08 % (mean 35.53), loss 1.7192 - 1.7205
//     F 5000, every 8th   35.23 / 35.01 / 35.39 / 35.62 / 35.78 % (mean 35.41), loss 1.7187 - 1.7199
//   F 10000 every 8th (seed 1234): 35.38 %, 1.7193; F 2000 every 8th: 35.17 %, 1.7259;
//   F 1000 every 16th: 32.78 %, 1.8350 (too many words wait too long).
//   The default is rare_below 5, every 4th step: for CBOW the loss below every-step's, the
//   analogy mean within 0.1 point of it and of one rank's (the seed spread is ~1 point).
//   Skip-gram 2 x 1, seeds 1234 / 7 / 3: every row every step 37.59 / 38.70 / 37.62 %
//   (mean 37.97), loss 2.2277 at seed 1234, 2.05 s of syncs per rank in peer memory;
//   rare rows every 4th step 38.04 / 38.49 / 37.32 % (mean 37.95), loss 2.2276, 0.71 s.
// Sums: syn0 past its hot rows is summed over the rows some rank touched since the last
// sync (every thread marks its kept words; the maps are OR-ed by one allreduce), the rest
// densely. A step of 2^18 words touches about a quarter of syn0's rows per rank, but the
// negatives touch nearly every row of syn1neg, so that stays dense. At 2 ranks the sparse
// sum gives the same bits as the dense one (2 base - base = base exactly for untouched
// rows); sum_allreduce against delta_allreduce moved the analogy figures by <= 0.01.
// Cost of one sync of syn0 + syn1neg at wiki17m's size (2 x 68,457 x 100 floats, 55 MB),
// 2 ranks, 2.0 GHz host: 75 ms as delta_allreduce (25 in MPI), 56 ms as sum_allreduce,
// 35-45 ms with the touched rows of syn0 (CBOW 2 x 1: 5.7-7.4 s of syncs in 63-67 s,
// 12.5 s before); the barrier before it (wait_seconds) shows how long the ranks wait for
// each other (1.4 - 3.1 s there). On the 2.6 GHz host: 17.6 ms through MPI, 9.9 ms in peer
// memory (the touched rows of syn0 and all of syn1neg).
#include <cstring>

#include "core/error.h"
#include "dist/communicator.h"
#include "models/replica_sync.h"
#include "models/word2vec/word2vec.h"

namespace loom {

// Collective; called by every rank at the end of every step when world > 1.
void Word2Vec::synchronize(bool full) {
  const int64_t n = params_.total_elements();
  float* x = params_.values().f32();
  if (options_.sync == Word2VecSync::kAverage) {
    comm_.allreduce(Tensor::of(x, n), ReduceOp::kAvg);
    return;
  }
  float* base = static_cast<float*>(base_.data());
  // The syn0 rows any rank touched since they were last summed (the same list on every rank).
  collect_touched();
  comm_.allreduce(Tensor::of(touched_.data(), static_cast<int64_t>(touched_.size())), ReduceOp::kMax);
  const int64_t D = options_.dim, V = vocab_.size();
  const int64_t syn0 = view_.syn0 - x, syn1neg = view_.syn1neg != nullptr ? view_.syn1neg - x : -1;
  // Rows [rare_from, V) of syn0 and syn1neg wait for the next full sync.
  const int64_t rare_from = full ? V : std::min(V, rare_rows_from_);
  struct Piece { int64_t begin, end; };
  auto synced = [&](const SyncSegment& g, Piece out[3]) {   // g's element ranges summed now
    int count = 0;
    int64_t at = g.offset, end = g.offset + g.length;
    for (int64_t table : {syn0, syn1neg}) {
      if (table < 0 || rare_from == V) continue;
      const int64_t lo = table + rare_from * D, hi = table + V * D;   // the rare rows of that table
      if (end <= lo || at >= hi) continue;
      if (at < lo) out[count++] = {at, lo};
      at = std::max(at, hi);
    }
    if (at < end) out[count++] = {at, end};
    return count;
  };
  if (peers_ != nullptr) {
    owned_.resize(static_cast<size_t>(comm_.size()));
    for (auto& list : owned_) list.clear();
  }
  for (const SyncSegment& g : sync_segments_) {
    Piece pieces[3];
    const int count = synced(g, pieces);
    for (int k = 0; k < count; ++k) {
      const int64_t begin = pieces[k].begin, length = pieces[k].end - pieces[k].begin;
      switch (g.kind) {
        case SyncKind::kAverage:
          average_allreduce(comm_, x + begin, base + begin, length, options_.threads);
          break;
        case SyncKind::kSum:
          if (peers_ != nullptr) split_by_owner(begin, begin + length, owned_);
          else sum_allreduce(comm_, x + begin, base + begin, length, options_.threads);
          break;
        case SyncKind::kSumTouchedRows: {   // whole rows of syn0
          touched_rows_.clear();
          for (int64_t w = (begin - syn0) / D; w < (begin + length - syn0) / D; ++w)
            if (touched_[static_cast<size_t>(w)] != 0) touched_rows_.push_back(static_cast<int32_t>(w));
          if (peers_ != nullptr) {   // Note [Owner-computes sync]
            for (int32_t w : touched_rows_) split_by_owner(syn0 + w * D, syn0 + (w + 1) * D, owned_);
          } else {
            sum_allreduce_rows(comm_, view_.syn0, base + syn0, D, touched_rows_, sync_scratch_);
          }
          break;
        }
      }
    }
  }
  if (peers_ != nullptr) peer_sum_sync(comm_, *peers_, owned_, peer_scratch_);
  std::fill(touched_.begin(), touched_.begin() + rare_from, uint8_t{0});
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
