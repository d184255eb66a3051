#pragma once
// What the GPT kind reads and writes around the model (launch/kinds/gpt.cpp and the
// `loom eval` / `loom generate` / `loom export` commands): its token data as windows, the
// Hugging Face export, and a checkpoint opened back into a GptNet with its tokenizer.
//
// Note [GPT export layout]
// `loom export --format safetensors` (and RUN_DIR/hf/ after training) writes into a
// directory what `GPT2LMHeadModel.from_pretrained(DIR)` and
// `GPT2TokenizerFast.from_pretrained(DIR)` load:
//   model.safetensors  float32, GPT-2's plain names (wte.weight, wpe.weight,
//                      h.<i>.ln_1.weight, h.<i>.attn.c_attn.weight, ..., ln_f.bias);
//                      the four linear weights per block transposed to Conv1D's
//                      [in, out]; zero biases when the model has none (GPT-2 always has
//                      them); no lm_head.weight (tied to wte.weight)
//   config.json        model_type gpt2, architectures [GPT2LMHeadModel], vocab_size,
//                      n_positions, n_ctx, n_embd, n_layer, n_head, activation_function
//                      gelu_new, layer_norm_epsilon, tie_word_embeddings, no dropout,
//                      bos/eos = <|endoftext|> when the vocabulary has it
//   vocab.json, merges.txt (BPE) or char_vocab.txt (characters; transformers has no
//                      loader for it, the model still loads)
#include <memory>
#include <string>
#include <vector>

#include "io/token_windows.h"
#include "launch/pipeline/token_stage.h"
#include "models/gpt/gpt.h"

namespace loom {

class CheckpointReader;
class Tokenizer;
struct Config;
struct PipelineContext;

// [gpt] checks that need two keys at once (the schema checks one): d_model a multiple of
// n_head, seq_len <= n_positions. ConfigError naming the keys and values.
void check_gpt_section(const Config& config);

// TokenWindows as the model's WindowSource.
class TokenWindowSource final : public WindowSource {
 public:
  explicit TokenWindowSource(TokenWindows windows) : windows_(std::move(windows)) {}
  int64_t windows_per_epoch() const override { return windows_.windows_per_epoch(); }
  int64_t seq_len() const override { return windows_.seq_len(); }
  void window(int64_t index, int32_t* out) const override { windows_.window(index, out); }

 private:
  TokenWindows windows_;
};

struct GptData {
  TokenData tokens;                          // the tokenizer and the token stream
  std::unique_ptr<WindowSource> train;
  std::unique_ptr<WindowSource> heldout;     // null when tokens.heldout_fraction is 0
  double unigram_loss = 0.0;                 // held-out loss of the training unigram model
};

// Collective: the token stage, then the split into training and held-out windows of
// gpt.seq_len (DataError when a split is smaller than one window).
GptData open_gpt_data(PipelineContext& ctx, const Config& config);
// The split alone, over token data already prepared.
GptData gpt_data_from(TokenData tokens, const Config& config);

// Rank 0: writes Note [GPT export layout] into `dir`; returns the files written.
std::vector<std::string> write_gpt_hf_export(const GptNet& net, const Tokenizer& tokenizer,
                                             const std::string& dir);

// A GPT checkpoint opened for use: its config, the network (float32, CPU) holding the
// checkpoint's parameters, and the tokenizer its run saved (RUN_DIR/tokenizer/, found next
// to the checkpoint directory, else the paths in the stored config).
struct GptCheckpoint {
  std::unique_ptr<Config> config;
  std::unique_ptr<GptNet> net;
  std::unique_ptr<Tokenizer> tokenizer;
  int64_t step = 0;
};
GptCheckpoint open_gpt_checkpoint(const CheckpointReader& reader, int64_t micro_batch,
                                  int64_t seq_len /* 0 = n_positions */);

// The tokenizer a run used (GPT's or BERT's): the copy it saved in `saved_dir`
// (RUN_DIR/tokenizer/), else the files its config's [tokens] names.
std::unique_ptr<Tokenizer> load_run_tokenizer(const Config& config, const std::string& saved_dir);

// `loom export CKPT --format safetensors --out DIR`.
void export_gpt_checkpoint(const CheckpointReader& reader, const std::string& out_dir);

}  // namespace loom
