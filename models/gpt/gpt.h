#pragma once
// Gpt: GPT-2 pretraining as a loom Model (models/model.h). The network is GptNet
// (gpt_net.h); this file adds the data order, gradient accumulation and synchronisation,
// clipping, AdamW with warm-up + cosine decay, held-out evaluation and checkpoint state.
//
// Note [GPT data parallelism]
// Step s trains on the global batch of windows [s·B, (s+1)·B) of one global order that
// depends on the seed alone (WindowSource; io/token_windows.h). Rank r of W takes its
// contiguous block of it (rank_slice, Note [Rank slices] in io/token_windows.h) and runs
// it in micro-batches of at most `micro_batch` windows, accumulating gradients of (1 / (B·T)) · Σ token losses, i.e.
// of the mean loss over the GLOBAL batch. Only the last micro-batch's backward marks
// parameters ready, so GradSync's bucket allreduces (sums) overlap that backward and the
// result is the global batch's gradient at any world size (equal up to float summation
// order). After GradSync::finish every rank holds the same gradient, so the clipping norm
// computed locally IS the global norm over all ranks. The data cursor is s·B windows: a
// resume at the same world size continues bit for bit, at another world size from the same
// global window.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/buffer.h"
#include "core/optimizer.h"
#include "dist/grad_sync.h"
#include "models/gpt/gpt_net.h"
#include "models/model.h"

namespace loom {

class Communicator;

// Windows of seq_len + 1 tokens in one global order (index counts across epochs).
class WindowSource {
 public:
  virtual ~WindowSource() = default;
  virtual int64_t windows_per_epoch() const = 0;
  virtual int64_t seq_len() const = 0;
  // Window `index` (epoch = index / windows_per_epoch()): seq_len + 1 token ids.
  virtual void window(int64_t index, int32_t* out) const = 0;
};

struct GptOptions {
  GptShape shape;
  int64_t seq_len = 256;          // training context (<= shape.n_positions)
  int64_t batch_size = 8;         // global sequences per optimizer step
  int64_t micro_batch = 0;        // sequences per forward/backward on a rank; 0 = its whole slice
  int64_t steps = 1000;           // optimizer steps of the run
  double lr = 6e-4;
  double lr_min = 6e-5;
  int64_t warmup_steps = 100;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
  bool decay_embeddings = false;
  double grad_clip = 1.0;         // 0 = no clipping
  int64_t eval_every = 250;       // held-out loss every this many steps (0 = only at the end)
  int64_t eval_batches = 20;      // held-out batches of batch_size windows per evaluation
  GradSyncOptions buckets;
  uint64_t seed = 1;
  // Where the network, its gradients and the optimizer state live (Note [Training on a
  // GPU] in launch/run/train_device.h): each micro-batch's ids are copied there.
  Device device = Device::cpu();
};

// One held-out evaluation.
struct GptEval {
  int64_t step = 0;       // after this many steps
  double loss = 0.0;      // mean token loss over the held-out windows
  int64_t windows = 0;
};

using GptSyncReport = GradSyncReport;

class Gpt final : public Model {
 public:
  // `train` and `heldout` outlive the model; heldout may be null (no evaluation).
  Gpt(const GptOptions& options, Communicator& comm, const WindowSource* train,
      const WindowSource* heldout);
  ~Gpt() override;

  std::string_view kind() const override { return "gpt"; }
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
  bool checkpoint_ready(int64_t) const override { return true; }   // replicas equal after every step
  std::vector<std::string> shape_keys() const override;

  const GptOptions& options() const { return options_; }
  GptNet& net() { return net_; }
  const GptNet& net() const { return net_; }
  // Collective: mean token loss over the first `windows` held-out windows (0: eval_batches
  // batches), each rank its slice.
  GptEval evaluate_heldout(Communicator& comm, int64_t windows = 0);
  const std::vector<GptEval>& evaluations() const { return evals_; }
  GptSyncReport sync_report() const;
  // Matmul FLOPs of one optimizer step over the global batch (forward + backward = 3x forward).
  double step_matmul_flops() const;
  // Over this run's steps AFTER its first (which also pays for first-touch page faults of
  // every buffer and the allreduce calibration): this rank's seconds in train_step, its
  // matmul FLOPs, and the global batch's tokens.
  double train_seconds() const { return train_seconds_; }
  double rank_matmul_flops() const { return rank_flops_; }
  int64_t steady_tokens() const { return steady_tokens_; }

 private:
  GradSync& sync_for(const StepContext& ctx);
  void load_windows(const WindowSource& source, int64_t first, int64_t count);
  // The loaded (n, T) tokens and targets on the net's device (copied there on a GPU).
  std::pair<Tensor, Tensor> batch_on_device(int64_t n);

  GptOptions options_;
  Communicator& comm_;
  const WindowSource* train_;
  const WindowSource* heldout_;
  GptNet net_;
  std::unique_ptr<AdamW> optimizer_;
  std::unique_ptr<GradSync> sync_;
  Communicator* sync_comm_ = nullptr;
  std::vector<int32_t> window_buf_;   // (micro_batch, seq_len + 1)
  std::vector<int32_t> tokens_;       // (micro_batch, seq_len)
  std::vector<int32_t> targets_;      // (micro_batch, seq_len)
  Buffer ids_device_;                 // on a GPU: (2, micro_batch, seq_len) tokens, targets
  int64_t steps_done_ = 0;
  std::vector<GptEval> evals_;
  double blocking_allreduce_s_ = -1.0;
  double train_seconds_ = 0.0;
  double rank_flops_ = 0.0;
  int64_t steady_tokens_ = 0;
  bool first_step_done_ = false;
};

}  // namespace loom
