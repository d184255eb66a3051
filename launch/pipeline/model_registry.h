#pragma once
// The model registry: every kind `loom train` can train registers here once, and
// `loom train` (pipeline.h) dispatches on train.model through it.
//
// Note [Adding a model]
// A new model kind is one folder and one registration; nothing else is edited:
//   1. models/<kind>/ - the Model (models/model.h) over core/, dist/ and io/: parameters
//      in a ParamStore with DESIGN.md names, train_step, checkpoint state. No launch/ code.
//   2. launch/kinds/<kind>.cpp - its config section (LOOM_MODEL_SECTION and
//      LOOM_REGISTER_MODEL_SECTION, Note [Model sections]), a ModelRecipe that maps the
//      section onto the model's options, runs the data stages and builds the model, writes
//      its exports and evaluates it; a function for `loom export` of its checkpoints; and
//      one LOOM_REGISTER_MODEL(kind, Recipe, export_fn, "help").
// The CLI, the Trainer and the shared pipeline find the kind by name; the config loader
// accepts the name for train.model and the section's keys, `loom config --describe` lists
// them. Files in launch/kinds/ are linked whole into every binary (launch/CMakeLists.txt),
// so their static registrations are never dropped by the linker.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "launch/config/model_sections.h"

namespace loom {

class CheckpointReader;
class Model;
class Session;
class RunReport;

// What a recipe gets to work with: the session (config, communicator, run directory,
// threads) and the run's report, where stages record their times and kinds their figures.
struct PipelineContext {
  Session& session;
  RunReport& report;
};

// An evaluation of the current parameters (rank 0).
struct Evaluation {
  std::string note;                       // appended to an epoch's log line; "" = nothing evaluated
  std::map<std::string, double> metrics;  // figures for the epoch record ("analogy": 0.42)
  std::string json;                       // final only: a JSON object merged into eval.json ("" = none)
};

// One model kind's part of `loom train`: everything the shared pipeline cannot know.
class ModelRecipe {
 public:
  virtual ~ModelRecipe() = default;
  // Collective: checks that need no data (files named by the config exist, export formats
  // are known) so that a typo costs nothing, then the data stages (each recorded in
  // ctx.report), then the model, ready to train (the Trainer restores a checkpoint).
  virtual std::unique_ptr<Model> build(PipelineContext& ctx) = 0;
  // Whether the kind trains on a GPU with run.device = "cuda" (its build() then calls
  // train_device(), launch/run/train_device.h); the pipeline refuses a GPU for the others.
  virtual bool trains_on_gpu() const { return false; }
  // Rank 0: evaluates the model as it is now. `final`: after training (print the full
  // results, fill Evaluation::json); otherwise at an epoch end (eval.every_epochs).
  virtual Evaluation evaluate(const Model& model, bool final) = 0;
  // Rank 0, after training: writes the exports into the run directory; returns the files.
  virtual std::vector<std::string> write_exports(const Model& model) = 0;
  // Collective, after training: per-rank figures for the report (every rank calls it).
  virtual void gather_report(PipelineContext& ctx, const Model& model) = 0;
};

// What `loom export CHECKPOINT` asks of a checkpoint's kind.
struct ExportRequest {
  std::string path;     // the checkpoint file (open in the reader)
  std::string format;   // --format
  std::string out;      // --out
  std::string output;   // --output: the kind's variant of its export ("" = the checkpoint's own)
};

struct ModelKind {
  const char* name;     // train.model, and the checkpoint's model_kind
  const char* help;     // one line for `loom train --help`
  std::unique_ptr<ModelRecipe> (*make)(const Session& session);
  // `loom export`: writes what request asks from a checkpoint of this kind; prints one line.
  void (*export_checkpoint)(const CheckpointReader& reader, const ExportRequest& request);
  // `loom eval CHECKPOINT` (language models; null for the embedding kinds, whose vectors
  // `loom eval analogy|similarity` read): collective over the session's ranks, the checkpoint
  // `path` of a run in `run_dir`, `count` held-out windows or examples (0 = the config's
  // evaluation size). Prints the figures on rank 0; returns the exit code.
  int (*evaluate_checkpoint)(Session& session, const std::string& path, const std::string& run_dir,
                             int64_t count);
};

bool register_model_kind(const ModelKind& kind);
// Every registered kind, by name.
const std::vector<ModelKind>& model_kinds();
// The kind named `name`; ConfigError naming train.model and the known kinds otherwise.
const ModelKind& find_model_kind(std::string_view name);

}  // namespace loom

// At namespace scope in launch/kinds/<kind>.cpp: `Recipe` has a constructor taking
// `const Session&`; `export_fn` is the kind's ModelKind::export_checkpoint; a language
// model registers with LOOM_REGISTER_LANGUAGE_MODEL and its ModelKind::evaluate_checkpoint.
#define LOOM_REGISTER_MODEL(kind, Recipe, export_fn, help_text)                                   \
  LOOM_REGISTER_LANGUAGE_MODEL(kind, Recipe, export_fn, nullptr, help_text)
#define LOOM_REGISTER_LANGUAGE_MODEL(kind, Recipe, export_fn, eval_fn, help_text)                 \
  [[maybe_unused]] static const bool loom_model_kind_##kind =                                     \
      ::loom::register_model_kind_name(#kind) &&                                                  \
      ::loom::register_model_kind({#kind, help_text,                                              \
                                   [](const ::loom::Session& session) {                           \
                                     return std::unique_ptr<::loom::ModelRecipe>(                 \
                                         std::make_unique<Recipe>(session));                      \
                                   },                                                             \
                                   export_fn, eval_fn})
