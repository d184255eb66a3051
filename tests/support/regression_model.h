#pragma once
// A least-squares linear regression: a real, tiny data-parallel model that the Trainer and
// checkpoint tests train, kill and resume (the embedding models add their own such tests
// as they land). It trains through the seams the transformers use: its forward and
// backward are core/kernels.h calls (linear, squared error) and its gradients go through
// GradSync (dist/grad_sync.h) on the step's device communicator.
//
// Data follow one global order that depends on the seed alone: example g has features
// x_k = uniform(-1, 1) from philox(seed, g) and target y = sum_k sin(k + 1) x_k + 0.5.
// Each step takes a global batch of `batch` examples; rank r takes its contiguous slice
// [r B / W, (r + 1) B / W). A per-rank RNG stream (seed, rank, kDropout) drops one feature
// of each example with probability 1/4 (unless options.dropout is off), so resuming must
// restore per-rank RNG state to continue bit for bit.
//
// One step (shapes for this rank's n examples, D = dim):
//   pred (n, 1)  = linear_forward(features (n, D), weight (1, D), bias (1))
//   loss (n)     = ½ (pred − target)²                     squared_error_forward
//   dpred (n, 1) = pred − target                           squared_error_backward
//   dweight (1, D), dbias (1) += linear_backward(dpred, features, weight)
//   GradSync: sum over ranks, divided by the global batch B; then AdamW.
// Every buffer is sized at construction for the largest slice: the step allocates nothing
// (but the communicator's Work handle per bucket, see dist/grad_sync.h).
#include <cstdint>
#include <memory>
#include <vector>

#include "core/optimizer.h"
#include "core/param_store.h"
#include "core/rng.h"
#include "models/model.h"

namespace loom {
class GradSync;
}

namespace loom::test {

struct RegressionOptions {
  int64_t dim = 1024;
  int64_t batch = 64;
  int64_t steps = 100;
  int64_t steps_per_epoch = 25;
  uint64_t seed = 7;
  double lr = 0.01;
  int64_t ready_every = 1;   // checkpoint_ready() only after multiples of this many steps (and the last)
  bool dropout = true;       // off: the run depends on the seed alone, not on the world size
};

class RegressionModel final : public Model {
 public:
  RegressionModel(const RegressionOptions& options, Communicator& comm);
  ~RegressionModel() override;

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
  // Features and targets of global examples [begin, begin + n) into rows 0..n-1.
  void load_examples(int64_t begin, int64_t n);
  GradSync& sync_for(const StepContext& ctx);

  RegressionOptions options_;
  Communicator& comm_;
  ParamStore params_;
  int weight_ = -1, bias_ = -1;   // parameter indices: weight (1, D), bias (1)
  std::unique_ptr<AdamW> optimizer_;
  std::unique_ptr<GradSync> sync_;
  Communicator* sync_comm_ = nullptr;   // the communicator sync_ was built on
  Rng dropout_rng_;
  int64_t examples_seen_ = 0;
  // Batch-sized buffers for the largest slice of a global batch (rows = ceil(B / W)).
  int64_t rows_ = 0;
  std::vector<float> features_;   // (rows, D)
  std::vector<float> targets_;    // (rows, 1)
  std::vector<float> pred_;       // (rows, 1)
  std::vector<float> dpred_;      // (rows, 1)
  std::vector<float> loss_;       // (rows)
};

}  // namespace loom::test
