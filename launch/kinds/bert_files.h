#pragma once
// What the BERT kind reads and writes around the model (launch/kinds/bert.cpp and the
// `loom eval` / `loom export` commands): its examples, the Hugging Face export, and a
// checkpoint opened back into a BertNet with its tokenizer.
//
// Note [BERT export layout]
// `loom export --format safetensors` (and RUN_DIR/hf/ after training) writes into a
// directory what `BertForPreTraining.from_pretrained(DIR)` and
// `BertTokenizerFast.from_pretrained(DIR)` load:
//   model.safetensors      float32, the parameters under BertForPreTraining's state_dict
//                          names: loom's own (DESIGN.md's: embeddings..., encoder.layer.<i>...,
//                          pooler.dense, cls.predictions..., cls.seq_relationship) with
//                          "bert." in front of the BertModel's (bert_hf_name), so that
//                          from_pretrained loads them unchanged; linear weights [out, in] as torch's
//                          nn.Linear; no cls.predictions.decoder.weight (tied to the word
//                          embeddings) and no decoder bias (tied to cls.predictions.bias)
//   config.json            model_type bert, architectures [BertForPreTraining], the sizes,
//                          hidden_act gelu (erf), layer_norm_eps, pad_token_id, no dropout
//   vocab.txt              the WordPiece vocabulary
//   tokenizer_config.json  do_lower_case (the run's tokens.lowercase), the special tokens
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "io/bert_examples.h"
#include "launch/pipeline/token_stage.h"
#include "models/bert/bert.h"

namespace loom {

class CheckpointReader;
class Tokenizer;
struct Config;
struct PipelineContext;

// BertExamples as the model's BertExampleSource. Not thread-safe (one scratch example):
// the model reads its examples from one thread.
class BertExampleAdapter final : public BertExampleSource {
 public:
  explicit BertExampleAdapter(BertExamples examples)
      : examples_(std::move(examples)), scratch_(examples_.options()) {}
  int64_t examples_per_epoch() const override { return examples_.examples_per_epoch(); }
  int64_t seq_len() const override { return examples_.options().max_seq_len; }
  int64_t max_predictions() const override { return examples_.options().max_predictions_per_seq; }
  void example(int64_t index, const BertExampleSlot& out) const override;
  const BertExamples& examples() const { return examples_; }

 private:
  BertExamples examples_;
  mutable BertExample scratch_;
};

// The special token ids of a WordPiece tokenizer; ConfigError when the tokenizer is not one.
BertSpecialIds bert_special_ids(const Tokenizer& tokenizer);

// [bert] settings as the examples' options (seed from run.seed).
BertDataOptions bert_data_options(const Config& config, const Tokenizer& tokenizer);

struct BertData {
  TokenData tokens;                            // the tokenizer and the sentence token stream
  std::unique_ptr<BertExampleAdapter> train;
  std::unique_ptr<BertExampleAdapter> heldout;   // null when tokens.heldout_fraction is 0
  double build_seconds = 0.0;                  // building both instance tables
};

// Collective: the token stage in sentence layout, then the examples (Note [BERT examples]).
BertData open_bert_data(PipelineContext& ctx, const Config& config);
// The examples alone, over token data already prepared.
BertData bert_data_from(TokenData tokens, const Config& config);

// The name Hugging Face's BertForPreTraining gives loom's parameter `name`: "bert." +
// name for the embeddings, the encoder and the pooler, the heads' cls.* names unchanged.
std::string bert_hf_name(const std::string& name);

// Rank 0: writes Note [BERT export layout] into `dir`; returns the files written.
std::vector<std::string> write_bert_hf_export(const BertNet& net, const Tokenizer& tokenizer,
                                              bool lowercase, const std::string& dir);

// `loom export CKPT --format safetensors --out DIR`.
void export_bert_checkpoint(const CheckpointReader& reader, const std::string& out_dir);

}  // namespace loom
