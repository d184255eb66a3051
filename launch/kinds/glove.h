#pragma once
// The GloVe model kind (models/glove) in `loom train`: its config sections [glove] and
// [cooccur], the co-occurrence stage, and the `loom cooccur` command. Registered in
// glove.cpp (Note [Adding a model] in launch/pipeline/model_registry.h).
#include <string>

#include "launch/config/model_sections.h"
#include "models/glove/glove.h"

namespace loom {

class Session;
struct Config;

// ---- [glove] --------------------------------------------------------------------------
// Maps one to one onto GloveOptions (models/glove/glove.h).
#define LOOM_CONFIG_GLOVE(X_BOOL, X_INT, X_REAL, X_STR, X_ENUM, X_LIST)                          \
  X_INT(dim, 100, ConfigRange::between(1, 4096), "vector size D of W and W_ctx")                  \
  X_REAL(x_max, 100.0, ConfigRange::above(0), "weighting cutoff: f(x) = min(1, (x/x_max)^alpha)") \
  X_REAL(alpha, 0.75, ConfigRange::above(0), "weighting exponent alpha")                          \
  X_REAL(eta, 0.05, ConfigRange::above(0), "AdaGrad initial step size")                           \
  X_REAL(grad_clip, 100.0, ConfigRange::above(0), "clip of eta * gradient per component")         \
  X_INT(epochs, 15, ConfigRange::between(1, 100000), "passes over the co-occurrence non-zeros")   \
  X_INT(threads, 0, ConfigRange::between(0, kMaxThreadsPerRank),                                                     \
        "Hogwild threads per rank (lock-free, timing-dependent results); 0 = run.threads; "       \
        "1 = deterministic and bit-exact on resume")                                              \
  X_ENUM(sync, "stratified", "stratified|delta|average",                                          \
         "across ranks: stratified = each phase trains disjoint row/column blocks, then the "     \
         "changes are summed (exact); delta = every rank trains its whole partition, changes "    \
         "summed after every step; average = parameters and AdaGrad state averaged")              \
  X_INT(step_nnz, 16777216, ConfigRange::at_least(1),                                             \
        "non-zeros of the largest block per step: the sync period across ranks")                 \
  X_BOOL(reshuffle, true,                                                                         \
         "visit the non-zeros in chunks of 4096 in a fresh random order every epoch (false: "     \
         "the same order every epoch, as GloVe's reference)")                                     \
  X_ENUM(output, "sum", "sum|w|concat", "exported vectors: W + W_ctx, W alone, or [W, W_ctx]")
LOOM_MODEL_SECTION(glove, GloveSection, LOOM_CONFIG_GLOVE)

// ---- [cooccur] ------------------------------------------------------------------------
#define LOOM_CONFIG_COOCCUR(X_BOOL, X_INT, X_REAL, X_STR, X_ENUM, X_LIST)                        \
  X_INT(window, 15, ConfigRange::between(1, 40), "context window: pairs at distance d add 1/d")   \
  X_BOOL(symmetric, true, "count both directions; false = left context only")                    \
  X_REAL(memory_gb, 4.0, ConfigRange::above(0),                                                   \
         "per-rank memory budget of the counting; sorted runs over it spill to disk")             \
  X_STR(spill_dir, "", "where spilled runs go; '' = the run directory")
LOOM_MODEL_SECTION(cooccur, CooccurSection, LOOM_CONFIG_COOCCUR)

// [glove] onto GloveOptions: glove.threads 0 -> `run_threads` (run.threads, resolved by
// the Session), seed from run.seed.
GloveOptions glove_options(const Config& config, int run_threads);

// Collective: `loom cooccur` (+ GloVe's cooccurrence.bin when export_bin is not empty).
int run_cooccur_command(Session& session, const std::string& export_bin);

}  // namespace loom
