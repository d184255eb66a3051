#pragma once
// The word2vec model kind (models/word2vec) in `loom train`: its config section
// [word2vec]. Registered in word2vec.cpp (Note [Adding a model] in
// launch/pipeline/model_registry.h).
#include "launch/config/model_sections.h"
#include "models/word2vec/word2vec.h"

namespace loom {

struct Config;

// ---- [word2vec] -----------------------------------------------------------------------
// Maps one to one onto Word2VecOptions (models/word2vec/word2vec.h); defaults are the
// original word2vec tool's.
#define LOOM_CONFIG_WORD2VEC(X_BOOL, X_INT, X_REAL, X_STR, X_ENUM, X_LIST)                       \
  X_ENUM(arch, "cbow", "cbow|skipgram", "architecture: CBOW (mean of the context) or skip-gram")  \
  X_INT(dim, 100, ConfigRange::between(1, 4096), "vector size D of syn0 and the output layers")   \
  X_INT(window, 5, ConfigRange::between(1, 100),                                                  \
        "largest window each side; each centre word draws b uniform in [1, window]")             \
  X_INT(negative, 5, ConfigRange::between(0, 100), "negative samples per prediction; 0 = off")    \
  X_BOOL(hs, false, "hierarchical softmax over a Huffman tree of the counts")                    \
  X_BOOL(shared_negatives, true,                                                                  \
         "skip-gram: the context words of a window share one draw of negatives (Ji et al. "       \
         "2016; batched, fast); false = fresh negatives per pair, as the original tool")          \
  X_REAL(sample, 1e-3, ConfigRange::between(0, 1), "subsampling threshold of frequent words; 0 = off") \
  X_REAL(alpha, 0.0, ConfigRange::at_least(0),                                                    \
         "initial learning rate; 0 = 0.05 for cbow, 0.025 for skipgram")                          \
  X_REAL(min_alpha, 1e-4, ConfigRange::between(0, 1),                                             \
         "floor of the linearly decaying learning rate, as a fraction of alpha")                  \
  X_REAL(ns_power, 0.75, ConfigRange::between(0, 1), "noise distribution count^ns_power")        \
  X_INT(epochs, 5, ConfigRange::between(1, 100000), "passes over the corpus (word2vec -iter)")    \
  X_INT(threads, 0, ConfigRange::between(0, kMaxThreadsPerRank),                                                \
        "Hogwild threads per rank (lock-free, timing-dependent results); 0 = run.threads; "       \
        "1 = deterministic and bit-exact on resume")                                              \
  X_ENUM(sync, "delta", "delta|average",                                                          \
         "replica sync after every step: delta = apply the sum of all ranks' changes, "           \
         "average = average the parameters")                                                      \
  X_INT(step_words, 262144, ConfigRange::at_least(1),                                             \
        "words of the largest shard per step: the sync period across ranks")                     \
  X_REAL(average_above, -1.0, ConfigRange::at_least(-1),                                         \
         "with sync = delta: rows of words expected to be kept at least this many times in one "  \
         "rank's step are averaged across ranks instead of summed; 0 = sum every row; -1 = 100 "  \
         "for cbow, 0 for skipgram")                                                              \
  X_REAL(rare_below, 5.0, ConfigRange::at_least(0),                                               \
         "with sync = delta: rows of words expected to be kept fewer than this many times in one " \
         "rank's step (rare rows) are summed only every rare_every steps")                        \
  X_INT(rare_every, 4, ConfigRange::between(1, 1000000),                                          \
        "rare rows are summed at every rare_every-th step (checkpoints wait for such a step); "    \
        "1 = every row at every step")                                                            \
  X_INT(max_sentence_words, 1000, ConfigRange::between(1, 1000000),                               \
        "longer lines are cut into sentences of this many words (word2vec: 1000)")               \
  X_BOOL(prefetch, true,                                                                          \
         "negative sampling: fetch the next window's rows into the cache while the current one "  \
         "is computed (same results, CBOW +40 % on a large vocabulary); false only to measure it")
LOOM_MODEL_SECTION(word2vec, Word2VecSection, LOOM_CONFIG_WORD2VEC)

// [word2vec] onto Word2VecOptions: word2vec.threads 0 -> `run_threads`, seed from run.seed.
Word2VecOptions word2vec_options(const Config& config, int run_threads);

}  // namespace loom
