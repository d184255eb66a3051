// Glove's replica state across ranks: the synchronisation at the end of every step and
// restore() from a checkpoint.
//
// Note [GloVe synchronisation]
// Each rank trains on the non-zeros it owns (rows with row % world == rank) with
// per-example AdaGrad, so within a step the replicas drift apart; at the end of every step
// they are made equal again, which also makes every step boundary a consistent state to
// checkpoint. Candidates:
//   stratified - (the default) an epoch is W phases; in phase k rank r trains only its
//             non-zeros (i, j) with j % W == (r + k) % W. A record touches W[i], b[i],
//             W_ctx[j], b_ctx[j] and their accumulators, so in a phase no two ranks touch
//             the same row: the ranks' changes are disjoint, and summing them at the sync
//             (x <- base + sum over ranks (x_r - base), as delta) gives exactly what one
//             process applying all of them would have. The result is that of a serial run
//             in another order, whatever the period; at least W syncs per epoch. This is
//             the stratified SGD of distributed matrix factorisation (Gemulla et al. 2011).
//   delta   - every rank trains its whole partition; at the sync, x <- base + sum over
//             ranks (x_r - base). W and b rows get their owner's updates only, but W_ctx
//             and b_ctx rows of frequent words get every rank's update computed from the
//             same stale row: with W ranks each moving a row most of the way towards its
//             own optimum the sum overshoots, by more the longer the period.
//   average - x <- mean over ranks of x_r, for parameters and accumulators alike (model
//             averaging). An owner's W row update is divided by the world size, and so
//             is every gradsq increment: learning slows down as ranks are added.
//   per-mini-batch gradient allreduce is not a candidate: GloVe updates per example with
//   AdaGrad, and a dense (V, D) allreduce per mini-batch of a few thousand non-zeros
//   would cost far more than the updates themselves.
// Measured (Release, 1 thread per rank, tests/models/test_glove_train.cpp
// MeasureSyncSchemes: LOOM_GLOVE_MEASURE=1 mpirun -np N build/tests/test_glove_train
// --gtest_filter=GloveTrain.MeasureSyncSchemes; loss = mean weighted loss per non-zero over
// the last epoch, all ranks; accuracy = analogy total as models/embedding_eval.h defines it):
//   planted corpus (20k sentences, window 8, D 50, x_max 10, 25 epochs, ~34k nnz in all,
//   no reshuffle); one rank: loss 0.02228, accuracy 0.9924
//     scheme      step_nnz      2 ranks: loss  accuracy   3 ranks: loss  accuracy
//     stratified  1,024 .. 2^20          0.02244  0.9886            0.02255  0.9905
//     delta       1,024                  0.02257  0.9867            0.02269  0.9867
//     delta       16,384                 0.02272  0.9867            0.02831  0.9886
//     delta       2^20 (1 sync/epoch)    0.02245  0.9867            0.02831  0.9886
//     average     1,024                  0.04033  0.9640            0.05995  0.8939
//     average     2^20 (1 sync/epoch)    0.04030  0.9659            0.05854  0.9110
//   (stratified gives the same loss at every period: its sum is exact.)
//   wiki17m (bench/glove.sh: D 100, window 15, x_max 10, 15 iterations, 2 ranks x 1):
//     delta, 2^23 non-zeros per step (4 syncs/epoch): diverged at epoch 9 (loss 1.2e8)
//     delta, 2^21 (14 syncs/epoch): loss 0.0305, analogy 32.51 %
//     stratified, 2^24 (2 syncs/epoch): loss 0.0302, analogy 32.95 % (one rank: 0.0302,
//     32.78 %)
//   one sync at wiki17m's size (V 71,290, D 100: two allreduces of 28.5 M floats):
//   220-600 ms at 2 ranks, 600-750 ms at 3 on the shared 2-core machine, with the sync
//   written as three passes over the arrays; it is fused per piece since (Note [Fused
//   delta sync] in models/replica_sync.h): measured inside word2vec at a similar size
//   (55 MB, 2 ranks, the 2.0 GHz host) 75 ms per sync, of which 25 ms in MPI and the rest
//   the passes over the arrays (word2vec has since gone to sum_allreduce, 56 ms).
// Choice: stratified. It cannot diverge through the sync, matches the single-rank loss at
// any world size, and needs the fewest syncs: the default period glove.step_nnz = 2^24 is
// one step per phase on wiki17m (~14 M non-zeros per block at 2 ranks), 2 syncs per epoch.
// Not done yet: W and b rows only ever change on their owner, so they need no sync until
// a checkpoint or the export; syncing W_ctx, b_ctx and their accumulators alone would
// halve the volume.
#include <cstring>

#include "core/error.h"
#include "dist/communicator.h"
#include "models/glove/glove.h"
#include "models/replica_sync.h"

namespace loom {

// Collective; called by every rank at the end of every step when world > 1.
void Glove::synchronize() {
  const int64_t n = params_.total_elements();
  float* values = params_.values().f32();
  float* gsq = gradsq().f32();
  if (options_.sync != GloveSync::kAverage) {
    delta_allreduce(comm_, values, static_cast<float*>(values_base_.data()), n, options_.threads);
    delta_allreduce(comm_, gsq, static_cast<float*>(gradsq_base_.data()), n, options_.threads);
  } else {
    comm_.allreduce(Tensor::of(values, n), ReduceOp::kAvg);
    comm_.allreduce(Tensor::of(gsq, n), ReduceOp::kAvg);
  }
}

// The Trainer has read the parameters. Same world size and step count per epoch: the
// cursor continues exactly where it was (bit-exact with threads = 1). Otherwise the
// partitions are different ones; the run continues in the same epoch at the same
// fraction of it (slice * S_new / S_old, rounded down), and total_steps() is adjusted so
// that the remaining epochs are complete.
void Glove::restore(const CheckpointReader& reader, int64_t step) {
  for (const ParamStore::Entry& e : params_.entries()) {
    LOOM_CHECK(reader.has_slot(e.name, "gradsq"), DataError,
               reader.path() + ": /optimizer/" + e.name + "/gradsq is missing (not a GloVe checkpoint?)");
    reader.read_slot(e.name, "gradsq", Tensor(gradsq().f32() + e.offset, e.shape, DType::kF32));
  }
  int64_t words = 0;
  const std::vector<uint64_t> data = reader.read_state("data", &words);
  LOOM_CHECK(words == 4, DataError, reader.path() + ": /state/data has " + std::to_string(words) +
                                        " words per rank, GloVe writes 4");
  const int saved_world = reader.meta().world_size;
  const int row = saved_world == comm_.size() ? comm_.rank() : 0;
  const int64_t saved_epoch = static_cast<int64_t>(data[static_cast<size_t>(row) * 4 + 0]);
  const int64_t saved_slice = static_cast<int64_t>(data[static_cast<size_t>(row) * 4 + 1]);
  const int64_t saved_steps = static_cast<int64_t>(data[static_cast<size_t>(row) * 4 + 2]);
  LOOM_CHECK(saved_steps > 0 && saved_slice < saved_steps, DataError,
             reader.path() + ": /state/data holds an impossible cursor");
  epoch_ = saved_epoch;
  if (saved_world == comm_.size() && saved_steps == steps_per_epoch_) {
    slice_ = saved_slice;
    LOOM_CHECK(epoch_ * steps_per_epoch_ + slice_ == step, DataError,
               reader.path() + ": /state/data cursor does not match step " + std::to_string(step));
  } else {
    slice_ = saved_slice * steps_per_epoch_ / saved_steps;
  }
  total_steps_ = step + (options_.epochs * steps_per_epoch_ - (epoch_ * steps_per_epoch_ + slice_));
  nnz_seen_ = reader.meta().tokens_seen;
  if (values_base_.data() != nullptr) {
    std::memcpy(values_base_.data(), params_.values().data(), values_base_.size());
    std::memcpy(gradsq_base_.data(), gradsq_.data(), gradsq_base_.size());
  }
}

}  // namespace loom
