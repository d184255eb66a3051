#pragma once
// Optimizers over a ParamStore's packed buffers. Each keeps its state in named slots with
// the ParamStore's layout (all slots in ONE allocation, slot after slot), so a checkpoint writes
// /optimizer/<param>/<slot> from slot_view(param, slot) and resumes by reading it back.
//
// step() reads the gradient buffer, updates the value buffer, and leaves the gradients as
// they were (the Trainer zeroes them). The state lives where the parameters live: AdamW,
// LAMB, clip_grad_norm and divide_in_place also run on CUDA parameters (float32 values,
// gradients and state; core/cuda/optimizer.cu, chosen by params.device()); SGD and AdaGrad
// (GloVe, word2vec) are CPU-only and say so.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/buffer.h"
#include "core/optimizer_cuda.h"
#include "core/param_store.h"

namespace loom {

class Optimizer {
 public:
  explicit Optimizer(const ParamStore& params) : params_(params) {}
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  virtual std::string_view name() const = 0;           // "sgd", "adagrad", "adamw", "lamb"
  // One update of every parameter with learning rate `lr`.
  virtual void step(ParamStore& params, double lr) = 0;

  // Slot names in a fixed order ("gradsq"; "m", "v"); empty for SGD.
  const std::vector<std::string>& slot_names() const { return slot_names_; }
  // The state of parameter `param_index` in slot `slot`, shaped like the parameter.
  Tensor slot_view(int param_index, std::string_view slot) const;
  // Number of steps taken (AdamW's bias correction uses it; checkpointed).
  int64_t steps_taken() const { return steps_; }
  void set_steps_taken(int64_t steps) { steps_ = steps; }

 protected:
  // Allocates the slots (once, from the constructor) on the parameters' device, each with
  // the ParamStore's packed layout and filled with `init`.
  void init_slots(std::vector<std::string> names, float init);
  // For the CUDA step: uploads the chunk table of the parameters' layout (Note [Optimizer
  // chunks on the GPU] in core/optimizer_cuda.h) with each parameter's decay flag (empty
  // `decay`: all decay). Once, from the constructor, when the parameters are on a GPU.
  void build_device_chunks(const std::vector<uint8_t>& decay);
  // Refuses a step on parameters this optimizer has no implementation for.
  void require_cpu() const;
  float* slot_data(size_t slot) const {
    return static_cast<float*>(slots_.data()) + slot * size_t(params_.total_elements());
  }

  const ParamStore& params_;
  std::vector<std::string> slot_names_;
  Buffer slots_;   // (slots, params.total_elements()) on params.device()
  int64_t steps_ = 0;
  Buffer device_table_;              // CUDA parameters only: the chunk table's arrays
  cuda::OptimizerChunks chunks_{};   // views into device_table_
};

class Sgd final : public Optimizer {
 public:
  explicit Sgd(const ParamStore& params) : Optimizer(params) {}
  std::string_view name() const override { return "sgd"; }
  void step(ParamStore& params, double lr) override;  // w -= lr * g
};

// AdaGrad as GloVe uses it: gradsq starts at `initial_accumulator` (GloVe: 1.0) and
// w -= lr * g / sqrt(gradsq) after gradsq += g^2.
class AdaGrad final : public Optimizer {
 public:
  AdaGrad(const ParamStore& params, float initial_accumulator = 1.0f);
  std::string_view name() const override { return "adagrad"; }
  void step(ParamStore& params, double lr) override;
};

struct AdamWOptions {
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;   // decoupled: w -= lr * wd * w
  // Which parameters decay (declaration order, 1 = yes); empty: all of them. Transformers
  // decay linear weights only (GptNet::decay_mask).
  std::vector<uint8_t> decay{};
};

class AdamW final : public Optimizer {
 public:
  AdamW(const ParamStore& params, AdamWOptions options);
  std::string_view name() const override { return "adamw"; }
  void step(ParamStore& params, double lr) override;

 private:
  AdamWOptions options_;
};

// Note [LAMB]
// LAMB (You et al., "Large Batch Optimization for Deep Learning: Training BERT in 76
// minutes") is Adam's direction rescaled per parameter tensor so that each layer moves by a
// fixed fraction of its own norm, which keeps large global batches (many ranks) stable:
//   m = β1 m + (1 − β1) g,  v = β2 v + (1 − β2) g²,  m̂ = m / (1 − β1^t),  v̂ = v / (1 − β2^t)
//   u = m̂ / (√v̂ + ε) + λ w                          (λ: weight decay, masked as AdamW's)
//   trust = ‖w‖ / ‖u‖ when both norms are > 0, else 1;  w −= lr · trust · u
// Tensors that do not decay (biases, LayerNorm weights: the decay mask) are also excluded
// from the trust ratio (trust = 1), as the BERT reference implementation excludes them
// from layer adaptation. The options are AdamWOptions' (same meanings). The norms are
// summed in double over fixed chunks of 4096 elements and the chunks added in order, so a
// step's result does not depend on the number of OpenMP threads.
class Lamb final : public Optimizer {
 public:
  Lamb(const ParamStore& params, AdamWOptions options);
  std::string_view name() const override { return "lamb"; }
  void step(ParamStore& params, double lr) override;
  // The trust ratio each parameter got in the last step (declaration order). On a GPU it is
  // copied from the device when asked (synchronises).
  const std::vector<double>& trust_ratios() const;

 private:
  AdamWOptions options_;
  std::vector<int64_t> chunk_begin_;    // (params + 1) first chunk of each parameter
  std::vector<double> chunk_w_, chunk_u_;   // per chunk: Σ w², Σ u²
  mutable std::vector<double> trust_;
  Buffer device_sums_;    // CUDA: (2 · chunks) per-chunk Σ w², Σ u², then (params) trust
};

// Scales params' gradients so that their global norm is at most max_norm (0: no clipping)
// and returns the norm before clipping. Σ g² runs over 256 fixed blocks of the packed buffer,
// each summed in one thread and added in order, so the norm does not depend on the thread
// count. Transformers call it after GradSync::finish, when every rank holds the same
// (all-reduced) gradient: the local norm IS the global one, and every rank clips alike.
// On a GPU the same blocks are summed on the device (Note [Optimizer chunks on the GPU]);
// returning the norm synchronises with the device.
double clip_grad_norm(ParamStore& params, double max_norm);

// x[i] /= divisor for a float32 tensor on any device, each quotient correctly rounded
// (GradSync::finish's scaling of the summed gradients). Asynchronous on a GPU (the current
// loom stream of its device).
void divide_in_place(Tensor x, double divisor);

}  // namespace loom
