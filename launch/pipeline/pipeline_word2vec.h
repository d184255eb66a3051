#pragma once
// `loom train` with train.model = "word2vec": corpus -> vocabulary (reused when unchanged,
// Note [Stage reuse] in pipeline_data.h) -> this rank's shard read as word ids -> training
// (the Trainer: checkpoints, --resume, stop signals) -> export of syn0 (rank 0) ->
// evaluation (rank 0: analogy and similarity when configured, printed and written to
// RUN_DIR/eval.json).
//
// Files in the run directory:
//   planted.txt, planted-questions.txt    corpus.synthetic only
//   vocab.txt, vocab.h5, vocab.fingerprint
//   checkpoints/step_NNNNNNNN.h5, checkpoints/latest
//   <vectors.name>.txt | .w2v.txt | .bin  (glove | word2vec | word2vec-bin)
//   eval.json, metrics.jsonl, config.toml
#include "models/word2vec/word2vec.h"

namespace loom {

class Session;
struct Config;

// [word2vec] onto Word2VecOptions: word2vec.threads 0 -> `run_threads`, seed from run.seed.
Word2VecOptions word2vec_options(const Config& config, int run_threads);

// Collective: the whole pipeline. Returns 0, or 128 + signal after a clean stop.
int run_word2vec_pipeline(Session& session);

}  // namespace loom
