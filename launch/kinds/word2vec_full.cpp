// `loom export --format word2vec-full` (word2vec_full.h).
//
// Note [Continuing in gensim]
// A gensim Word2Vec model file is a Python pickle plus .npy arrays: loom cannot write the
// pickle without Python, and its layout changes with gensim's versions. So the export is a
// directory of plain files and a small Python recipe that builds the gensim model from them:
//   vectors.bin       syn0, the input vectors, word2vec binary (KeyedVectors.load_word2vec_format)
//   syn1neg.npy       the output weights of negative sampling, (V, D) float32, the rows in
//                     vectors.bin's order (numpy.load)
//   vocab.txt         "word count" per line in the same order: the corpus counts, which
//                     gensim needs for subsampling and its noise distribution
//   gensim.json       gensim's Word2Vec arguments equivalent to the run's [word2vec] section
//                     (sg, vector_size, window, negative, sample, alpha, min_alpha,
//                     ns_exponent, epochs, seed)
//   to_gensim.py      python3 to_gensim.py DIR OUT.model: builds the vocabulary from
//                     vocab.txt, puts every word's syn0 and syn1neg rows in place (by word:
//                     gensim orders ties of equal counts its own way), saves a full model.
// Then Word2Vec.load(OUT.model) continues with model.train(sentences, total_examples=...,
// epochs=...). tests/e2e/word2vec_full_test.cpp does exactly that and checks that the
// weights arrive bit for bit and that gensim's loss starts where loom's training left it.
// Hierarchical softmax is refused: syn1's rows are the inner nodes of loom's Huffman tree,
// and gensim builds its own tree, whose node numbering need not agree.
#include "launch/kinds/word2vec_full.h"

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/param_store.h"
#include "io/atomic_file.h"
#include "io/export.h"
#include "io/npy.h"
#include "launch/config/config.h"
#include "launch/kinds/word2vec.h"
#include "launch/pipeline/embedding_recipe.h"

namespace loom {
namespace {

constexpr const char* kRecipe = R"PY(#!/usr/bin/env python3
"""Builds a gensim Word2Vec model from loom's `loom export --format word2vec-full` directory,
ready to continue training (Note [Continuing in gensim] in loom's launch/kinds/word2vec_full.cpp).

    python3 to_gensim.py EXPORT_DIR OUT.model
    # then:  model = gensim.models.Word2Vec.load("OUT.model")
    #        model.train(sentences, total_examples=len(sentences), epochs=1)
"""
import json
import os
import sys

import numpy as np
from gensim.models import KeyedVectors, Word2Vec


def build(export_dir):
    p = json.load(open(os.path.join(export_dir, "gensim.json"), encoding="utf-8"))
    kv = KeyedVectors.load_word2vec_format(os.path.join(export_dir, "vectors.bin"), binary=True)
    syn1neg = np.load(os.path.join(export_dir, "syn1neg.npy"))
    counts = {}
    with open(os.path.join(export_dir, "vocab.txt"), encoding="utf-8") as f:
        for line in f:
            word, count = line.rstrip("\n").rsplit(" ", 1)
            counts[word] = int(count)
    assert syn1neg.shape == kv.vectors.shape, (syn1neg.shape, kv.vectors.shape)
    model = Word2Vec(vector_size=p["vector_size"], window=p["window"], sg=p["sg"], hs=0,
                     negative=p["negative"], sample=p["sample"], alpha=p["alpha"],
                     min_alpha=p["min_alpha"], ns_exponent=p["ns_exponent"], epochs=p["epochs"],
                     seed=p["seed"], min_count=1, workers=1)
    model.build_vocab_from_freq(counts)
    for i, word in enumerate(kv.index_to_key):   # by word: gensim orders equal counts its own way
        j = model.wv.key_to_index[word]
        model.wv.vectors[j] = kv.vectors[i]
        model.syn1neg[j] = syn1neg[i]
    return model


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: to_gensim.py EXPORT_DIR OUT.model")
    build(sys.argv[1]).save(sys.argv[2])
    print("wrote " + sys.argv[2])
)PY";

}  // namespace

void export_word2vec_full(const CheckpointReader& reader, const ExportRequest& request) {
  const std::string& path = request.path;
  const Config config = load_config_text(reader.meta().config_toml, path + " (its stored config)", {});
  const Word2VecOptions o = word2vec_options(config, 1);
  LOOM_CHECK(!o.hs, ConfigError,
             path + " was trained with hierarchical softmax (word2vec.hs = true): word2vec-full exports negative "
                    "sampling's output weights only (syn1's rows follow loom's Huffman tree, which gensim "
                    "builds its own way); export the input vectors with --format word2vec-bin instead");
  LOOM_CHECK(o.negative > 0, ConfigError, path + " has no negative-sampling weights (word2vec.negative = 0)");
  const EmbeddingCheckpoint ck = read_embedding_checkpoint(reader, path, {"syn0", "syn1neg"});
  const ParamStore& params = *ck.params;
  const std::vector<std::string>& tokens = ck.tokens;
  const std::vector<int64_t>& counts = ck.counts;
  const int64_t V = ck.V, D = ck.D;
  const std::string& dir = request.out;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  LOOM_CHECK(!ec, IoError, "cannot create the export directory " + dir + ": " + ec.message());
  write_vectors(dir + "/vectors.bin", VectorFormat::kWord2VecBinary, tokens, params.value(0).f32(), D);
  write_npy_f32(dir + "/syn1neg.npy", params.value(1).f32(), V, D);
  std::string vocab;
  for (int64_t i = 0; i < V; ++i) vocab += tokens[static_cast<size_t>(i)] + " " + std::to_string(counts[static_cast<size_t>(i)]) + "\n";
  write_file_atomically(dir + "/vocab.txt", vocab);
  const bool skipgram = o.arch == Word2VecArch::kSkipGram;
  const double alpha = o.alpha > 0 ? o.alpha : (skipgram ? 0.025 : 0.05);
  nlohmann::ordered_json g;
  g["sg"] = skipgram ? 1 : 0;
  g["vector_size"] = D;
  g["window"] = o.window;
  g["negative"] = o.negative;
  g["sample"] = o.sample;
  g["alpha"] = alpha;
  g["min_alpha"] = alpha * o.min_alpha_ratio;
  g["ns_exponent"] = o.ns_power;
  g["epochs"] = o.epochs;
  g["seed"] = o.seed;
  g["loom_step"] = reader.meta().step;
  g["loom_checkpoint"] = path;
  write_file_atomically(dir + "/gensim.json", g.dump(2) + "\n");
  write_file_atomically(dir + "/to_gensim.py", kRecipe);
  std::printf("wrote %s: vectors.bin (syn0), syn1neg.npy, vocab.txt, gensim.json and to_gensim.py for %lld words x "
              "%lld from %s (step %lld); continue in gensim with: python3 %s/to_gensim.py %s OUT.model\n",
              dir.c_str(), static_cast<long long>(V), static_cast<long long>(D), path.c_str(),
              static_cast<long long>(reader.meta().step), dir.c_str(), dir.c_str());
}

}  // namespace loom
