#include "tests/support/regression_model.h"

#include <cmath>

#include "core/log.h"
#include "dist/communicator.h"

namespace loom::test {

RegressionModel::RegressionModel(const RegressionOptions& options, Communicator& comm)
    : options_(options), comm_(comm), dropout_rng_(options.seed, uint64_t(comm.rank()), RngPurpose::kDropout),
      features_(size_t(options.dim)) {
  params_.declare("weight", {options.dim});
  params_.declare("bias", {1});
  params_.finalize();
  optimizer_ = std::make_unique<AdamW>(params_, AdamWOptions{});
}

StepStats RegressionModel::train_step(const StepContext& ctx) {
  const int64_t D = options_.dim, B = options_.batch, W = comm_.size(), r = comm_.rank();
  const int64_t begin = ctx.step * B + r * B / W, end = ctx.step * B + (r + 1) * B / W;
  const uint64_t key = rng_key(options_.seed, 0, RngPurpose::kData);
  float* w = params_.value(0).f32();
  float* dw = params_.grad(0).f32();
  float& bias = params_.value(1).f32()[0];
  float& dbias = params_.grad(1).f32()[0];
  params_.zero_grads();
  StepStats stats;
  for (int64_t g = begin; g < end; ++g) {
    float target = 0.5f;
    for (int64_t k = 0; k < D; k += 4) {
      PhiloxBlock bits = philox(key, uint64_t(g), uint64_t(k));
      for (int64_t j = k; j < std::min(k + 4, D); ++j) {
        features_[size_t(j)] = float(bits[size_t(j - k)] >> 8) * 0x1.0p-23f - 1.0f;
        target += std::sin(float(j + 1)) * features_[size_t(j)];
      }
    }
    if (dropout_rng_.below(4) == 0) features_[dropout_rng_.below(uint64_t(D))] = 0.0f;
    float pred = bias;
    for (int64_t j = 0; j < D; ++j) pred += w[j] * features_[size_t(j)];
    float err = pred - target;
    for (int64_t j = 0; j < D; ++j) dw[j] += err * features_[size_t(j)];
    dbias += err;
    stats.loss_sum += 0.5 * double(err) * double(err);
    ++stats.examples;
  }
  comm_.allreduce(params_.grads(), ReduceOp::kSum);   // fixed order: the same sum on every rank
  float scale = 1.0f / float(B);
  float* g = params_.grads().f32();
  for (int64_t i = 0; i < params_.total_elements(); ++i) g[i] *= scale;
  optimizer_->step(params_, options_.lr);
  examples_seen_ = (ctx.step + 1) * B;
  stats.items = stats.examples;
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
