#pragma once
// The BERT model kind (models/bert) in `loom train`, `loom eval` and `loom export`: its
// config section [bert] and the mapping onto BertOptions. Registered in bert.cpp; the
// token data come from the [tokens] stage with WordPiece in sentence layout (Note [BERT
// token stream] in io/bert_examples.h), the examples from io/bert_examples.h.
#include "launch/config/model_sections.h"
#include "models/bert/bert.h"

namespace loom {

struct Config;

// ---- [bert] ---------------------------------------------------------------------------
#define LOOM_CONFIG_BERT(X_BOOL, X_INT, X_REAL, X_STR, X_ENUM, X_LIST)                            \
  X_INT(n_layer, 4, ConfigRange::between(1, 256), "encoder blocks (BERT-base 12, large 24)")      \
  X_INT(n_head, 4, ConfigRange::between(1, 256), "attention heads (hidden must be a multiple)")   \
  X_INT(hidden, 256, ConfigRange::between(1, 65536), "hidden size (BERT-base 768, large 1024)")   \
  X_INT(intermediate, 0, ConfigRange::between(0, 1 << 20),                                        \
        "feed-forward width; 0 = 4 x hidden (BERT-base 3072)")                                    \
  X_INT(max_position, 512, ConfigRange::between(1, 1048576), "learned positions (BERT: 512)")     \
  X_INT(seq_len, 128, ConfigRange::between(8, 1048576),                                           \
        "max_seq_len of the examples: [CLS] A [SEP] B [SEP] padded to this length")               \
  X_INT(max_predictions, 20, ConfigRange::between(1, 1048576),                                    \
        "masked positions per example at most (the original: 20 at 128, 80 at 512)")              \
  X_REAL(masked_lm_prob, 0.15, ConfigRange::between(0.0, 1.0), "share of tokens chosen for MLM")  \
  X_REAL(short_seq_prob, 0.1, ConfigRange::between(0.0, 1.0),                                     \
         "probability of a shorter random target length (the original recipe's)")                 \
  X_INT(batch_size, 16, ConfigRange::between(1, 1 << 30),                                         \
        "examples per optimizer step over ALL ranks (each rank takes its slice)")                 \
  X_INT(micro_batch, 0, ConfigRange::between(0, 1 << 30),                                         \
        "examples per forward/backward on a rank; 0 = the whole slice at once")                   \
  X_INT(steps, 1000, ConfigRange::between(1, int64_t(1) << 40), "optimizer steps of the run")     \
  X_ENUM(optimizer, "adamw", "adamw|lamb", "AdamW, or LAMB for large global batches")             \
  X_ENUM(schedule, "linear", "linear|cosine", "after warm-up: linear (BERT's) or cosine decay")   \
  X_REAL(lr, 1e-4, ConfigRange::above(0), "peak learning rate")                                   \
  X_REAL(lr_min, 0.0, ConfigRange::at_least(0), "learning rate at the last step")                 \
  X_INT(warmup_steps, 100, ConfigRange::at_least(0), "linear warm-up steps")                      \
  X_REAL(beta1, 0.9, ConfigRange::between(0, 0.999999), "Adam beta1")                             \
  X_REAL(beta2, 0.999, ConfigRange::between(0, 0.999999), "Adam beta2")                           \
  X_REAL(eps, 1e-6, ConfigRange::above(0), "Adam epsilon")                                        \
  X_REAL(weight_decay, 0.01, ConfigRange::at_least(0),                                            \
         "decoupled weight decay (never biases or LayerNorms)")                                   \
  X_BOOL(decay_embeddings, true, "weight decay on the embedding tables too (BERT: yes)")          \
  X_REAL(grad_clip, 1.0, ConfigRange::at_least(0),                                                \
         "clip the gradient to this global norm (over all ranks); 0 = no clipping")               \
  X_INT(eval_every, 250, ConfigRange::at_least(0),                                                \
        "held-out MLM/NSP every this many steps (and at the end); 0 = only at the end")           \
  X_INT(eval_batches, 20, ConfigRange::at_least(1),                                               \
        "held-out batches of batch_size examples per evaluation")                                 \
  X_REAL(bucket_mb, 4.0, ConfigRange::above(0), "gradient allreduce bucket cap in MiB")           \
  X_REAL(ln_eps, 1e-12, ConfigRange::above(0), "LayerNorm epsilon (BERT: 1e-12)")
LOOM_MODEL_SECTION(bert, BertSection, LOOM_CONFIG_BERT)

// [bert] checks that need two keys at once: hidden a multiple of n_head, seq_len <=
// max_position. ConfigError naming the keys and values.
void check_bert_section(const Config& config);
// [bert] onto BertOptions (vocab_size and pad id from the tokenizer; seed from run.seed).
BertOptions bert_options(const Config& config, int vocab_size, int32_t pad_id);

}  // namespace loom
