#pragma once
// Model: the interface every model (GloVe, word2vec, BERT, GPT) implements over core/,
// dist/ and io/. The Trainer owns the loop; a model declares its parameters by their
// DESIGN.md names, initialises them, and runs one step on a batch of its own data.
#include <cstdint>
#include <string_view>

namespace loom {

class ParamStore;
class Rng;
class Communicator;

// What one step reports; summed or averaged across ranks by the Trainer.
struct StepStats {
  double loss_sum = 0.0;   // sum of per-example losses on this rank
  int64_t examples = 0;    // examples (pairs, windows, tokens) this step on this rank
  int64_t tokens = 0;      // corpus tokens consumed this step on this rank
};

// Per-step context handed to a model: the step number, the learning rate and where
// gradients are synchronised.
struct StepContext {
  int64_t step = 0;
  double lr = 0.0;
  Communicator* comm = nullptr;
};

class Model {
 public:
  virtual ~Model() = default;
  // "glove", "word2vec", "bert", "gpt": stored as model_kind in checkpoints.
  virtual std::string_view kind() const = 0;
  virtual void declare_params(ParamStore& params) = 0;
  virtual void init(ParamStore& params, Rng& rng) = 0;
};

// The model kinds loom knows, in the order `loom --help` lists them.
std::string_view model_kind_list();

}  // namespace loom
