#pragma once
// `loom train` with train.model = "glove": corpus -> vocabulary -> co-occurrence (both
// reused when unchanged, Note [Stage reuse] in pipeline_data.h) -> training (the Trainer:
// checkpoints, --resume, stop signals) -> export of the vectors (rank 0) -> evaluation
// (rank 0: analogy and similarity when configured, printed and written to RUN_DIR/eval.json).
//
// Files in the run directory:
//   planted.txt, planted-questions.txt    corpus.synthetic only
//   vocab.txt, vocab.h5, vocab.fingerprint
//   cooccur.part-<r>-of-<W>.h5, cooccur.fingerprint
//   checkpoints/step_NNNNNNNN.h5, checkpoints/latest
//   <vectors.name>.txt | .w2v.txt | .bin  (glove | word2vec | word2vec-bin)
//   eval.json, metrics.jsonl, config.toml
#include <string>

#include "io/export.h"
#include "models/glove/glove.h"

namespace loom {

class Session;
struct Config;

// [glove] onto GloveOptions: glove.threads 0 -> `run_threads` (run.threads, resolved by
// the Session), seed from run.seed.
GloveOptions glove_options(const Config& config, int run_threads);

// The file name of one export format: NAME.txt, NAME.w2v.txt, NAME.bin.
std::string vector_file_name(const std::string& name, VectorFormat format);

// Collective: the whole pipeline. Returns 0, or 128 + signal after a clean stop.
int run_glove_pipeline(Session& session);

// Collective: `loom vocab` and `loom cooccur` (+ GloVe's cooccurrence.bin when
// export_bin is not empty).
int run_vocab_command(Session& session);
int run_cooccur_command(Session& session, const std::string& export_bin);

}  // namespace loom
