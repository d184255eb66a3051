#pragma once
// Bert: BERT pre-training (masked LM + next-sentence prediction) as a loom Model
// (models/model.h). The network is BertNet (bert_net.h); the examples come from a
// BertExampleSource (io/bert_examples.h behind it in `loom train`); this file adds the data
// order, the loss normalisation over the global batch, gradient accumulation and
// synchronisation, clipping, AdamW or LAMB with warm-up then linear or cosine decay,
// held-out evaluation and checkpoint state.
//
// Note [BERT data parallelism]
// As GPT's (Note [GPT data parallelism] in models/gpt/gpt.h), with examples in place of
// windows: step s trains on the global batch of examples [s·B, (s+1)·B) of one global
// order that depends on the seed alone, rank r of W takes its rank_slice and runs it in
// micro-batches. The loss is Hugging Face's BertForPreTraining loss over the GLOBAL batch:
//   loss = Σ MLM token losses / M + Σ NSP losses / N
// with M the masked positions and N the labelled pairs of the whole global batch. A rank
// cannot know M from its own slice (the number of masked positions depends on each
// example's length), so each step first loads its slice, counts its positions and labels,
// and one allreduce of two integers gives M and N before any backward; the gradients of
// (1/M) Σ MLM + (1/N) Σ NSP then sum over ranks to the global batch's gradient at any world
// size. Clipping by the global norm and the optimizer follow GradSync::finish, as GPT's.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/buffer.h"
#include "core/optimizer.h"
#include "dist/grad_sync.h"
#include "models/bert/bert_net.h"
#include "models/model.h"

namespace loom {

class Communicator;

// One pre-training example written into caller-owned arrays (seq_len T, max_predictions P).
struct BertExampleSlot {
  int32_t* tokens;      // (T) the masked input ids, [PAD] after the pair
  int32_t* segments;    // (T) 0 for [CLS] A [SEP], 1 for B [SEP], 0 for padding
  int32_t* mask;        // (T) 1 for real tokens, 0 for padding (the attention key mask)
  int32_t* positions;   // (P) masked positions, -1 for unused slots
  int32_t* labels;      // (P) the original ids at those positions, -1 for unused slots
  int32_t* nsp;         // (1) 0 = B follows A (IsNext), 1 = B is random (NotNext)
};

// Examples in one global order (index counts across epochs); const and thread-safe.
class BertExampleSource {
 public:
  virtual ~BertExampleSource() = default;
  virtual int64_t examples_per_epoch() const = 0;
  virtual int64_t seq_len() const = 0;
  virtual int64_t max_predictions() const = 0;
  virtual void example(int64_t index, const BertExampleSlot& out) const = 0;
};

enum class BertOptimizerKind : uint8_t { kAdamW, kLamb };
enum class BertSchedule : uint8_t { kLinear, kCosine };

struct BertOptions {
  BertShape shape;
  int64_t seq_len = 128;            // max_seq_len of the examples (<= shape.max_position)
  int64_t max_predictions = 20;     // masked positions per example at most
  int64_t batch_size = 16;          // global examples per optimizer step
  int64_t micro_batch = 0;          // examples per forward/backward on a rank; 0 = its slice
  int64_t steps = 1000;
  BertOptimizerKind optimizer = BertOptimizerKind::kAdamW;
  BertSchedule schedule = BertSchedule::kLinear;   // after warm-up: to lr_min (BERT: 0)
  double lr = 1e-4;
  double lr_min = 0.0;
  int64_t warmup_steps = 100;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-6;
  double weight_decay = 0.01;
  bool decay_embeddings = true;     // BERT decays everything but biases and LayerNorms
  double grad_clip = 1.0;           // 0 = no clipping
  int64_t eval_every = 250;
  int64_t eval_batches = 20;
  GradSyncOptions buckets;
  uint64_t seed = 1;
  // Where the network, its gradients and the optimizer state live (Note [Training on a
  // GPU] in launch/run/train_device.h): each micro-batch's ids are copied there.
  Device device = Device::cpu();
};

// One held-out evaluation.
struct BertEval {
  int64_t step = 0;
  double mlm_loss = 0.0;       // mean over the masked positions
  double mlm_accuracy = 0.0;   // argmax == label over the masked positions
  double nsp_loss = 0.0;       // mean over the pairs
  double nsp_accuracy = 0.0;
  int64_t examples = 0;
};

using BertSyncReport = GradSyncReport;

// The learning rate at `step` (warm-up, then linear or cosine decay to lr_min).
double bert_lr(const BertOptions& o, int64_t step);

class Bert final : public Model {
 public:
  // `train` and `heldout` outlive the model; heldout may be null (no evaluation).
  Bert(const BertOptions& options, Communicator& comm, const BertExampleSource* train,
       const BertExampleSource* heldout);
  ~Bert() override;

  std::string_view kind() const override { return "bert"; }
  ParamStore& params() override { return net_.params(); }
  int64_t total_steps() const override { return options_.steps; }
  int64_t steps_per_epoch() const override;
  int64_t epoch() const override;
  int64_t epoch_step() const override;
  std::string_view item_unit() const override { return "tok"; }
  StepStats train_step(const StepContext& ctx) override;
  std::vector<OptimizerSlot> optimizer_slots() override;
  std::vector<RankState> rank_state() const override;
  std::optional<VocabView> vocab() const override { return std::nullopt; }
  int64_t tokens_seen() const override { return steps_done_ * options_.batch_size * options_.seq_len; }
  void restore(const CheckpointReader& reader, int64_t step) override;
  bool checkpoint_ready(int64_t) const override { return true; }
  std::vector<std::string> shape_keys() const override;

  const BertOptions& options() const { return options_; }
  BertNet& net() { return net_; }
  const BertNet& net() const { return net_; }
  // Collective: MLM and NSP loss and accuracy over the first `examples` held-out examples
  // (0: eval_batches batches), each rank its slice.
  BertEval evaluate_heldout(Communicator& comm, int64_t examples = 0);
  const std::vector<BertEval>& evaluations() const { return evals_; }
  BertSyncReport sync_report() const;
  // As Gpt's: over the steps after the run's first.
  double train_seconds() const { return train_seconds_; }
  double rank_matmul_flops() const { return rank_flops_; }
  int64_t steady_tokens() const { return steady_tokens_; }

 private:
  GradSync& sync_for(const StepContext& ctx);
  void load_examples(const BertExampleSource& source, int64_t first, int64_t count);
  BertLosses run_forward(int64_t offset, int64_t n);

  BertOptions options_;
  Communicator& comm_;
  const BertExampleSource* train_;
  const BertExampleSource* heldout_;
  BertNet net_;
  std::unique_ptr<Optimizer> optimizer_;
  std::unique_ptr<GradSync> sync_;
  Communicator* sync_comm_ = nullptr;
  // A rank's whole slice of the global batch, loaded before the step (Note [BERT data
  // parallelism]): (slice, T) tokens, segments, mask; (slice, P) positions, labels; (slice) nsp.
  int64_t slice_capacity_ = 0;
  std::vector<int32_t> tokens_, segments_, mask_, positions_, labels_, nsp_;
  Buffer ids_device_;   // on a GPU: one micro-batch of the six, (micro_batch · (3T + 2P + 1)) i32
  int64_t steps_done_ = 0;
  std::vector<BertEval> evals_;
  double blocking_allreduce_s_ = -1.0;
  double train_seconds_ = 0.0;
  double rank_flops_ = 0.0;
  int64_t steady_tokens_ = 0;
  bool first_step_done_ = false;
};

}  // namespace loom
