#pragma once
// Model: the interface every model (GloVe, word2vec, BERT, GPT) implements for the
// Trainer (launch/run/trainer.h). The Trainer owns the loop, the stop agreement, progress and
// checkpoints; a model owns its parameters (a ParamStore with DESIGN.md names), its data
// shard, its optimizer state and what a "step" is (a mini-batch, a chunk of non-zeros, a
// slice of the corpus).
//
// Collective discipline: train_step() may run collectives (gradient or parameter
// averaging), and then every rank runs the same ones in the same order; every rank runs
// the same number of steps (total_steps() is equal on all ranks).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/device.h"
#include "io/checkpoint.h"

namespace loom {

class Communicator;
class ParamStore;

// What one step reports for this rank.
struct StepStats {
  double loss_sum = 0.0;   // sum of per-example losses on this rank
  int64_t examples = 0;    // examples (pairs, windows, sequences) this step on this rank
  int64_t items = 0;       // items for the rate display (tokens, non-zeros) on this rank
  double lr = -1.0;        // the learning rate the step used (metrics.jsonl, /status); < 0: none
};

// What the Trainer hands every step. `comm` is the host (MPI) communicator of the job, for
// scalars, data cursors and anything in host memory; `device_comm` is the communicator
// for buffers on `device` (comm_for(device): the same MPI communicator for CPU parameters,
// NCCL for CUDA ones), the one gradient synchronisation uses. Model code never picks a
// backend itself.
struct StepContext {
  int64_t step = 0;                     // global step index, from 0; equal on every rank
  Communicator* comm = nullptr;         // host collectives
  Device device = Device::cpu();        // where the model's parameters live (params().device())
  Communicator* device_comm = nullptr;  // collectives on `device` buffers
};

class Model {
 public:
  virtual ~Model() = default;

  // "glove", "word2vec", "bert", "gpt": the checkpoint's model_kind.
  virtual std::string_view kind() const = 0;
  virtual ParamStore& params() = 0;
  // Steps of the whole run (all epochs) and per epoch; equal on every rank.
  virtual int64_t total_steps() const = 0;
  virtual int64_t steps_per_epoch() const = 0;
  // Epochs completed, and steps done of the current epoch (0 at an epoch's start). The
  // Trainer ends an epoch (loss over all ranks, the epoch hook) when epoch() moves; after a
  // resume at another world size the step number no longer says where epochs end, so the
  // model does.
  virtual int64_t epoch() const = 0;
  virtual int64_t epoch_step() const = 0;
  // What the rate display counts ("tok", "pairs").
  virtual std::string_view item_unit() const = 0;

  // One step on this rank's share of the data.
  virtual StepStats train_step(const StepContext& ctx) = 0;

  // Checkpoint contents beyond the parameters: optimizer slots (views into the model's own
  // buffers, valid until the next step), per-rank state (RNG positions, data cursor; every
  // rank the same number of words), the vocabulary if the model has one, tokens seen.
  virtual std::vector<OptimizerSlot> optimizer_slots() = 0;
  virtual std::vector<RankState> rank_state() const = 0;
  virtual std::optional<VocabView> vocab() const = 0;
  virtual int64_t tokens_seen() const = 0;

  // Restores everything but the parameters (the Trainer has read those) from `reader`,
  // written after `step` steps, possibly at another world size (reader.meta().world_size):
  // then the model re-splits its data cursor and documents what differs.
  virtual void restore(const CheckpointReader& reader, int64_t step) = 0;

  // Whether the state after `steps_done` steps is one a checkpoint may hold: a model whose
  // replicas are only made fully equal every few steps (word2vec's rare rows) says no in
  // between, and the Trainer then saves at the next step that is (a stop request too).
  // Pure: every model says, none inherits a guess.
  virtual bool checkpoint_ready(int64_t steps_done) const = 0;

  // Config keys that fix the model's shape (e.g. "glove.dim"): resuming from a checkpoint
  // whose stored config differs in any of them is refused, listing the keys.
  virtual std::vector<std::string> shape_keys() const = 0;
};

class Optimizer;

// Every (parameter, slot) view of an optimizer over `params`, in declaration order: what a
// Model's optimizer_slots() returns when one Optimizer holds its whole state.
std::vector<OptimizerSlot> optimizer_slots_of(const Optimizer& optimizer, const ParamStore& params);
// Reads those slots back from a checkpoint (Model::restore).
void read_optimizer_slots(const CheckpointReader& reader, const Optimizer& optimizer, const ParamStore& params);

// The model kinds loom knows, in the order `loom --help` lists them.
std::string_view model_kind_list();

}  // namespace loom
