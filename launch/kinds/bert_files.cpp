#include "launch/kinds/bert_files.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "core/measure.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "io/tokenizer.h"
#include "launch/config/config.h"
#include "launch/kinds/bert.h"
#include "launch/kinds/gpt_files.h"
#include "launch/kinds/tokens.h"

namespace loom {
namespace {

namespace fs = std::filesystem;

}  // namespace

void BertExampleAdapter::example(int64_t index, const BertExampleSlot& out) const {
  examples_.example(index, scratch_);
  const BertExample& e = scratch_;
  const size_t T = e.input_ids.size(), P = e.mlm_positions.size();
  std::copy_n(e.input_ids.data(), T, out.tokens);
  std::copy_n(e.segment_ids.data(), T, out.segments);
  for (size_t t = 0; t < T; ++t) out.mask[t] = int64_t(t) < e.length ? 1 : 0;
  for (size_t p = 0; p < P; ++p) {
    const bool used = e.mlm_labels[p] >= 0;   // BertExamples pads positions with 0, labels with -1
    out.positions[p] = used ? e.mlm_positions[p] : -1;
    out.labels[p] = used ? e.mlm_labels[p] : -1;
  }
  *out.nsp = e.nsp_label;
}

BertSpecialIds bert_special_ids(const Tokenizer& tokenizer) {
  auto id = [&](std::string_view name) -> int32_t {
    const std::optional<uint32_t> v = tokenizer.special_id(name);
    LOOM_CHECK(v.has_value(), ConfigError,
               "BERT needs a WordPiece vocabulary with " + std::string(name) + " (tokens.tokenizer = "
               "\"wordpiece\"); the tokenizer is " + tokenizer.describe());
    return int32_t(*v);
  };
  BertSpecialIds s;
  s.pad = id("[PAD]");
  s.unk = id("[UNK]");
  s.cls = id("[CLS]");
  s.sep = id("[SEP]");
  s.mask = id("[MASK]");
  return s;
}

BertDataOptions bert_data_options(const Config& config, const Tokenizer& tokenizer) {
  const BertSection& b = config.models.get<BertSection>();
  BertDataOptions o;
  o.max_seq_len = b.seq_len;
  o.short_seq_prob = b.short_seq_prob;
  o.masked_lm_prob = b.masked_lm_prob;
  o.max_predictions_per_seq = b.max_predictions;
  o.seed = static_cast<uint64_t>(config.run.seed);
  o.vocab_size = int32_t(tokenizer.vocab_size());
  o.special = bert_special_ids(tokenizer);
  return o;
}

BertData open_bert_data(PipelineContext& ctx, const Config& config) {
  return bert_data_from(prepare_token_data(ctx, TokenLayout::kSentences), config);
}

BertData bert_data_from(TokenData tokens, const Config& config) {
  const auto t0 = SteadyClock::now();
  BertData d;
  d.tokens = std::move(tokens);
  LOOM_CHECK(d.tokens.stream->vocab_size() <= d.tokens.tokenizer->vocab_size(), DataError,
             "token shards " + d.tokens.stream->file_list() + " hold ids up to " +
                 std::to_string(d.tokens.stream->vocab_size()) + ", more than the tokenizer's " +
                 std::to_string(d.tokens.tokenizer->vocab_size()) + " tokens");
  const BertDataOptions options = bert_data_options(config, *d.tokens.tokenizer);
  BertSplits splits = split_bert_examples(d.tokens.stream, d.tokens.heldout_fraction, options);
  if (splits.heldout) d.heldout = std::make_unique<BertExampleAdapter>(std::move(*splits.heldout));
  d.train = std::make_unique<BertExampleAdapter>(std::move(splits.train));
  d.build_seconds = seconds_since(t0);
  return d;
}

std::string bert_hf_name(const std::string& name) {
  for (const char* prefix : {"embeddings.", "encoder.", "pooler."})
    if (name.starts_with(prefix)) return "bert." + name;
  return name;
}

std::vector<std::string> write_bert_hf_export(const BertNet& net, const Tokenizer& tokenizer,
                                              bool lowercase, const std::string& dir) {
  fs::create_directories(dir);
  const BertShape& s = net.shape();
  const ParamStore& params = net.params();
  std::vector<SafetensorsTensorView> views;
  views.reserve(size_t(params.size()));
  for (int i = 0; i < params.size(); ++i) {
    const ParamStore::Entry& e = params.entry(i);
    Tensor t = params.value(i);
    std::vector<int64_t> shape;
    for (int k = 0; k < t.shape().rank(); ++k) shape.push_back(t.shape()[k]);
    views.push_back(safetensors_f32(bert_hf_name(e.name), std::move(shape),
                                    std::span<const float>(t.f32(), size_t(t.numel()))));
  }
  const std::string model_path = (fs::path(dir) / "model.safetensors").string();
  write_safetensors(model_path, views, {{"format", "pt"}, {"producer", "loom"}});

  const BertSpecialIds special = bert_special_ids(tokenizer);
  nlohmann::json cfg = {
      {"model_type", "bert"},
      {"architectures", {"BertForPreTraining"}},
      {"vocab_size", s.vocab_size},
      {"hidden_size", s.hidden},
      {"num_hidden_layers", s.n_layer},
      {"num_attention_heads", s.n_head},
      {"intermediate_size", s.intermediate},
      {"hidden_act", "gelu"},
      {"max_position_embeddings", s.max_position},
      {"type_vocab_size", s.type_vocab},
      {"layer_norm_eps", s.ln_eps},
      {"initializer_range", 0.02},
      {"hidden_dropout_prob", 0.0},
      {"attention_probs_dropout_prob", 0.0},
      {"pad_token_id", special.pad},
      {"position_embedding_type", "absolute"},
      {"tie_word_embeddings", true},
      {"torch_dtype", "float32"},
  };
  const std::string config_path = (fs::path(dir) / "config.json").string();
  write_file_atomically(config_path, cfg.dump(2) + "\n");
  nlohmann::json tok = {
      {"tokenizer_class", "BertTokenizer"},
      {"do_lower_case", lowercase},
      {"strip_accents", nullptr},
      {"tokenize_chinese_chars", true},
      {"model_max_length", s.max_position},
      {"pad_token", "[PAD]"},
      {"unk_token", "[UNK]"},
      {"cls_token", "[CLS]"},
      {"sep_token", "[SEP]"},
      {"mask_token", "[MASK]"},
  };
  const std::string tok_path = (fs::path(dir) / "tokenizer_config.json").string();
  write_file_atomically(tok_path, tok.dump(2) + "\n");
  std::vector<std::string> files = {model_path, config_path, tok_path};
  for (const std::string& f : tokenizer.save_files(dir)) files.push_back(f);
  return files;
}

void export_bert_checkpoint(const CheckpointReader& reader, const std::string& out_dir) {
  LOOM_CHECK(reader.meta().model_kind == "bert", ConfigError,
             reader.path() + " holds a " + reader.meta().model_kind + " checkpoint, not bert");
  const Config config = load_config_text(reader.meta().config_toml, reader.path(), {});
  const fs::path run_dir = fs::path(reader.path()).parent_path().parent_path();
  std::unique_ptr<Tokenizer> tokenizer = load_run_tokenizer(config, (run_dir / "tokenizer").string());
  const BertOptions o = bert_options(config, int(tokenizer->vocab_size()), bert_special_ids(*tokenizer).pad);
  BertNet net(o.shape, 1, 1, 1);
  reader.read_model_into(net.params());
  const std::vector<std::string> files =
      write_bert_hf_export(net, *tokenizer, config.models.get<TokensSection>().lowercase, out_dir);
  std::string list;
  for (const std::string& f : files) list += (list.empty() ? "" : ", ") + fs::path(f).filename().string();
  log::info("export", "step " + std::to_string(reader.meta().step) + " of " + reader.path() + " -> " +
                          out_dir + "/ (" + list + "): loads as transformers' BertForPreTraining");
}

}  // namespace loom
