#pragma once
// `loom train` for every model kind: train.model picks the kind in the registry
// (model_registry.h); its recipe runs the data stages and builds the model; the Trainer
// trains it (checkpoints, --resume, stop signals, epoch records, eval.every_epochs through
// the epoch hook); rank 0 writes the kind's exports, evaluates, writes RUN_DIR/eval.json and
// logs the summary (run_report.h).
namespace loom {

class Session;

// Collective. Returns 0, or 128 + signal after a clean stop (the checkpoint is written).
int run_train_pipeline(Session& session);

// Collective: `loom vocab` - the corpus and vocabulary stages alone.
int run_vocab_command(Session& session);

}  // namespace loom
