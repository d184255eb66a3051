#pragma once
// The GPT model kind (models/gpt) in `loom train`, `loom eval`, `loom generate` and
// `loom export`: its config section [gpt] and the mapping onto GptOptions. Registered in
// gpt.cpp (Note [Adding a model] in launch/pipeline/model_registry.h); the token data come
// from the [tokens] stage (launch/pipeline/token_stage.h).
#include "launch/config/model_sections.h"
#include "models/gpt/gpt.h"

namespace loom {

struct Config;

// ---- [gpt] ----------------------------------------------------------------------------
#define LOOM_CONFIG_GPT(X_BOOL, X_INT, X_REAL, X_STR, X_ENUM, X_LIST)                             \
  X_INT(n_layer, 4, ConfigRange::between(1, 256), "transformer blocks")                           \
  X_INT(n_head, 4, ConfigRange::between(1, 256), "attention heads (d_model must be a multiple)")  \
  X_INT(d_model, 256, ConfigRange::between(1, 65536), "width of the residual stream (n_embd)")    \
  X_INT(n_positions, 0, ConfigRange::between(0, 1048576),                                         \
        "learned positions: the longest context the model can ever see; 0 = seq_len")             \
  X_INT(seq_len, 256, ConfigRange::between(1, 1048576), "training context in tokens")             \
  X_BOOL(bias, true, "biases in the linear layers and LayerNorms (GPT-2: true; nanoGPT: false)")  \
  X_INT(batch_size, 8, ConfigRange::between(1, 1 << 30),                                          \
        "sequences per optimizer step over ALL ranks (each rank takes its slice)")                \
  X_INT(micro_batch, 0, ConfigRange::between(0, 1 << 30),                                         \
        "sequences per forward/backward on a rank; gradients accumulate over a rank's slice; "    \
        "0 = the whole slice at once")                                                           \
  X_INT(steps, 1000, ConfigRange::between(1, int64_t(1) << 40), "optimizer steps of the run")     \
  X_REAL(lr, 6e-4, ConfigRange::above(0), "peak learning rate (AdamW)")                           \
  X_REAL(lr_min, 6e-5, ConfigRange::at_least(0), "learning rate at the end of the cosine decay")  \
  X_INT(warmup_steps, 100, ConfigRange::at_least(0), "linear warm-up steps, then cosine decay")   \
  X_REAL(beta1, 0.9, ConfigRange::between(0, 0.999999), "AdamW beta1")                            \
  X_REAL(beta2, 0.95, ConfigRange::between(0, 0.999999), "AdamW beta2")                           \
  X_REAL(eps, 1e-8, ConfigRange::above(0), "AdamW epsilon")                                       \
  X_REAL(weight_decay, 0.1, ConfigRange::at_least(0),                                             \
         "decoupled weight decay of the linear weights (never biases or LayerNorms)")             \
  X_BOOL(decay_embeddings, false, "weight decay on wte and wpe too (nanoGPT decays them)")        \
  X_REAL(grad_clip, 1.0, ConfigRange::at_least(0),                                                \
         "clip the gradient to this global norm (over all ranks); 0 = no clipping")               \
  X_INT(eval_every, 250, ConfigRange::at_least(0),                                                \
        "held-out loss every this many steps (and at the end); 0 = only at the end")              \
  X_INT(eval_batches, 20, ConfigRange::at_least(1),                                               \
        "held-out batches of batch_size windows per evaluation")                                  \
  X_REAL(bucket_mb, 4.0, ConfigRange::above(0),                                                   \
         "gradient allreduce bucket cap in MiB (the first: 1 MiB or less); smaller buckets start " \
         "sooner (gpt-tiny at 2 ranks: 73 % of 2 MiB buckets done before backward ends, 50 % "    \
         "of 25 MiB ones)")                                                                       \
  X_REAL(ln_eps, 1e-5, ConfigRange::above(0), "LayerNorm epsilon")
LOOM_MODEL_SECTION(gpt, GptSection, LOOM_CONFIG_GPT)

// [gpt] onto GptOptions (vocab_size from the tokenizer; seed from run.seed).
GptOptions gpt_options(const Config& config, int vocab_size);

}  // namespace loom
