#pragma once
// `loom export CHECKPOINT --format word2vec-full --out DIR`: a word2vec checkpoint in a form
// gensim can continue training from (Note [Continuing in gensim] in word2vec_full.cpp).
#include "io/checkpoint.h"
#include "launch/pipeline/model_registry.h"

namespace loom {

void export_word2vec_full(const CheckpointReader& reader, const ExportRequest& request);

}  // namespace loom
