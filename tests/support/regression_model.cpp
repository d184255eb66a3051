#include "tests/support/regression_model.h"

#include <algorithm>
#include <cmath>

#include "core/kernels.h"
#include "core/log.h"
#include "dist/communicator.h"
#include "dist/grad_sync.h"

namespace loom::test {

RegressionModel::RegressionModel(const RegressionOptions& options, Communicator& comm)
    : options_(options), comm_(comm), dropout_rng_(options.seed, uint64_t(comm.rank()), RngPurpose::kDropout) {
  weight_ = params_.declare("weight", {1, options.dim});   // linear: (out, in)
  bias_ = params_.declare("bias", {1});
  params_.finalize();
  optimizer_ = std::make_unique<AdamW>(params_, AdamWOptions{});
  const int64_t W = comm.size();
  rows_ = (options.batch + W - 1) / W;
  features_.resize(size_t(rows_ * options.dim));
  targets_.resize(size_t(rows_));
  pred_.resize(size_t(rows_));
  dpred_.resize(size_t(rows_));
  loss_.resize(size_t(rows_));
}

RegressionModel::~RegressionModel() = default;

void RegressionModel::load_examples(int64_t begin, int64_t n) {
  const int64_t D = options_.dim;
  const uint64_t key = rng_key(options_.seed, 0, RngPurpose::kData);
  for (int64_t row = 0; row < n; ++row) {
    const int64_t g = begin + row;
    float* x = features_.data() + row * D;   // (D)
    float target = 0.5f;
    for (int64_t k = 0; k < D; k += 4) {
      PhiloxBlock bits = philox(key, uint64_t(g), uint64_t(k));
      for (int64_t j = k; j < std::min(k + 4, D); ++j) {
        x[j] = float(bits[size_t(j - k)] >> 8) * 0x1.0p-23f - 1.0f;
        target += std::sin(float(j + 1)) * x[j];
      }
    }
    targets_[size_t(row)] = target;
    if (options_.dropout && dropout_rng_.below(4) == 0) x[dropout_rng_.below(uint64_t(D))] = 0.0f;
  }
}

// The GradSync on the step's device communicator (the model's own when the caller gives
// none). Built once: the Trainer hands the same communicator every step.
GradSync& RegressionModel::sync_for(const StepContext& ctx) {
  Communicator* comm = ctx.device_comm != nullptr ? ctx.device_comm : &comm_;
  if (sync_ == nullptr || comm != sync_comm_) {
    sync_ = std::make_unique<GradSync>(params_, *comm);
    sync_comm_ = comm;
  }
  return *sync_;
}

StepStats RegressionModel::train_step(const StepContext& ctx) {
  const int64_t D = options_.dim, B = options_.batch, W = comm_.size(), r = comm_.rank();
  const int64_t begin = ctx.step * B + r * B / W, n = (r + 1) * B / W - r * B / W;
  GradSync& sync = sync_for(ctx);
  load_examples(begin, n);
  Tensor features(features_.data(), {n, D}, DType::kF32);
  Tensor targets(targets_.data(), {n, 1}, DType::kF32);
  Tensor pred(pred_.data(), {n, 1}, DType::kF32);
  Tensor dpred(dpred_.data(), {n, 1}, DType::kF32);
  Tensor loss(loss_.data(), {n}, DType::kF32);
  // forward
  linear_forward(pred, features, params_.value(weight_), params_.value(bias_));
  squared_error_forward(loss, pred, targets);
  // backward, in reverse; one linear_backward completes both gradients
  params_.zero_grads();
  squared_error_backward(dpred, pred, targets);
  linear_backward(Tensor{}, params_.grad(weight_), params_.grad(bias_), dpred, features,
                  params_.value(weight_));
  sync.mark_ready(bias_);
  sync.mark_ready(weight_);
  sync.finish(double(B));   // the mean gradient over the global batch
  optimizer_->step(params_, options_.lr);
  examples_seen_ = (ctx.step + 1) * B;
  StepStats stats;
  for (int64_t i = 0; i < n; ++i) stats.loss_sum += double(loss_[size_t(i)]);
  stats.examples = n;
  stats.items = n;
  return stats;
}

std::vector<OptimizerSlot> RegressionModel::optimizer_slots() {
  std::vector<OptimizerSlot> slots;
  for (int i = 0; i < params_.size(); ++i)
    for (const std::string& s : optimizer_->slot_names())
      slots.push_back({params_.entry(i).name, s, optimizer_->slot_view(i, s)});
  return slots;
}

std::vector<RankState> RegressionModel::rank_state() const {
  return {{"rng", {dropout_rng_.position()}},
          {"data", {uint64_t(examples_seen_), uint64_t(optimizer_->steps_taken())}}};
}

void RegressionModel::restore(const CheckpointReader& reader, int64_t step) {
  for (int i = 0; i < params_.size(); ++i)
    for (const std::string& s : optimizer_->slot_names())
      reader.read_slot(params_.entry(i).name, s, optimizer_->slot_view(i, s));
  std::vector<uint64_t> data = reader.read_state("data");
  examples_seen_ = int64_t(data[0]);
  optimizer_->set_steps_taken(int64_t(data[1]));
  LOOM_ASSERT(examples_seen_ == step * options_.batch, "data cursor disagrees with the step");
  // The data order is global, so another world size just re-splits each batch. Per-rank
  // dropout streams only continue exactly at the same world size; otherwise each rank
  // starts its stream at a position derived from the step.
  if (reader.meta().world_size == comm_.size()) {
    dropout_rng_.seek(reader.read_state("rng")[size_t(comm_.rank())]);
  } else {
    dropout_rng_.seek(uint64_t(step) << 20);
    log::info("regression", "world size changed: per-rank dropout streams restarted");
  }
}

std::string RegressionModel::config_toml() const {
  return "\n[regression]\ndim = " + std::to_string(options_.dim) + "\n";
}

}  // namespace loom::test
