#pragma once
// A least-squares linear regression: a real, tiny data-parallel model that the Trainer and
// checkpoint tests train, kill and resume (the embedding models add their own such tests
// as they land).
//
// Data follow one global order that depends on the seed alone: example g has features
// x_k = uniform(-1, 1) from philox(seed, g) and target y = sum_k sin(k + 1) x_k + 0.5.
// Each step takes a global batch of `batch` examples; rank r takes its contiguous slice.
// A per-rank RNG stream (seed, rank, kDropout) drops one feature of each example with
// probability 1/4, so resuming must restore per-rank RNG state to continue bit for bit.
// Gradients are summed across ranks (allreduce) and AdamW updates the replicated weights.
#include <cstdint>
#include <memory>

#include "core/optimizer.h"
#include "core/param_store.h"
#include "core/rng.h"
#include "models/model.h"

namespace loom::test {

struct RegressionOptions {
  int64_t dim = 1024;
  int64_t batch = 64;
  int64_t steps = 100;
  int64_t steps_per_epoch = 25;
  uint64_t seed = 7;
  double lr = 0.01;
  int64_t ready_every = 1;   // checkpoint_ready() only after multiples of this many steps (and the last)
};

class RegressionModel final : public Model {
 public:
  RegressionModel(const RegressionOptions& options, Communicator& comm);

  std::string_view kind() const override { return "regression"; }
  ParamStore& params() override { return params_; }
  int64_t total_steps() const override { return options_.steps; }
  int64_t steps_per_epoch() const override { return options_.steps_per_epoch; }
  std::string_view item_unit() const override { return "ex"; }
  int64_t epoch() const override { return examples_seen_ / options_.batch / options_.steps_per_epoch; }
  int64_t epoch_step() const override { return examples_seen_ / options_.batch % options_.steps_per_epoch; }
  StepStats train_step(const StepContext& ctx) override;
  std::vector<OptimizerSlot> optimizer_slots() override;
  std::vector<RankState> rank_state() const override;
  std::optional<VocabView> vocab() const override { return std::nullopt; }
  int64_t tokens_seen() const override { return examples_seen_; }
  void restore(const CheckpointReader& reader, int64_t step) override;
  std::vector<std::string> shape_keys() const override { return {"regression.dim"}; }
  bool checkpoint_ready(int64_t steps_done) const override {
    return steps_done % options_.ready_every == 0 || steps_done >= options_.steps;
  }

  // "[regression]\ndim = N\n": appended to the stored config so shape checks can see dim.
  std::string config_toml() const;

 private:
  RegressionOptions options_;
  Communicator& comm_;
  ParamStore params_;
  std::unique_ptr<AdamW> optimizer_;
  Rng dropout_rng_;
  int64_t examples_seen_ = 0;
  std::vector<float> features_;   // (dim) scratch for one example, allocated once
};

}  // namespace loom::test
