#include "launch/kinds/gpt_files.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "io/atomic_file.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "io/tokenizer.h"
#include "launch/config/config.h"
#include "launch/kinds/gpt.h"
#include "launch/kinds/tokens.h"
#include "launch/pipeline/model_registry.h"

namespace loom {
namespace {

namespace fs = std::filesystem;

// Mean −log p(token) over stream tokens [split, N) under the add-one unigram model of
// tokens [0, split): the loss a model that ignores all context would reach.
double unigram_loss(const TokenStream& stream, uint64_t split, size_t vocab) {
  std::vector<double> counts(vocab, 1.0);
  std::vector<int32_t> buf(1 << 16);
  auto walk = [&](uint64_t begin, uint64_t end, auto&& f) {
    for (uint64_t at = begin; at < end;) {
      const size_t n = size_t(std::min<uint64_t>(buf.size(), end - at));
      stream.copy(at, std::span<int32_t>(buf.data(), n));
      for (size_t i = 0; i < n; ++i) f(buf[i]);
      at += n;
    }
  };
  walk(0, split, [&](int32_t t) { counts[size_t(t)] += 1.0; });
  double total = 0.0;
  for (double c : counts) total += c;
  double loss = 0.0;
  uint64_t n = 0;
  walk(split, stream.size(), [&](int32_t t) {
    loss -= std::log(counts[size_t(t)] / total);
    ++n;
  });
  return n > 0 ? loss / double(n) : 0.0;
}

std::string block(int l, const char* rest) { return "h." + std::to_string(l) + "." + rest; }

}  // namespace

// The tokenizer a run used: the copy its run saved in `saved_dir`, else the files [tokens]
// names (tokens.lowercase applies to WordPiece).
std::unique_ptr<Tokenizer> load_run_tokenizer(const Config& config, const std::string& saved_dir) {
  const TokensSection& t = config.models.get<TokensSection>();
  std::vector<std::string> saved, configured;
  if (t.tokenizer == "bpe") {
    saved = {(fs::path(saved_dir) / kBpeVocabFile).string(), (fs::path(saved_dir) / kBpeMergesFile).string()};
    configured = {t.vocab, t.merges};
  } else if (t.tokenizer == "wordpiece") {
    saved = {(fs::path(saved_dir) / kWordPieceVocabFile).string()};
    configured = {t.vocab};
  } else {
    saved = {(fs::path(saved_dir) / kCharVocabFile).string()};
    configured = {t.vocab};
  }
  bool have_saved = true;
  for (const std::string& f : saved) have_saved = have_saved && fs::exists(f);
  LOOM_CHECK(have_saved || !configured[0].empty(), IoError,
             "no tokenizer for this checkpoint: " + saved[0] + " is missing and the run's config " +
                 "names no tokens.vocab");
  TokenizerLoadOptions options;
  options.lowercase = t.lowercase;
  return load_tokenizer(t.tokenizer, have_saved ? saved : configured, options);
}

void check_gpt_section(const Config& config) {
  const GptSection& g = config.models.get<GptSection>();
  LOOM_CHECK(g.d_model % g.n_head == 0, ConfigError,
             "gpt.d_model = " + std::to_string(g.d_model) + " is not a multiple of gpt.n_head = " +
                 std::to_string(g.n_head));
  LOOM_CHECK(g.n_positions == 0 || g.seq_len <= g.n_positions, ConfigError,
             "gpt.seq_len = " + std::to_string(g.seq_len) + " exceeds the model's positions, " +
                 "gpt.n_positions = " + std::to_string(g.n_positions));
}

GptData open_gpt_data(PipelineContext& ctx, const Config& config) {
  return gpt_data_from(prepare_token_data(ctx), config);
}

GptData gpt_data_from(TokenData tokens, const Config& config) {
  const GptSection& g = config.models.get<GptSection>();
  GptData d;
  d.tokens = std::move(tokens);
  TokenSplits splits = d.tokens.windows(g.seq_len, static_cast<uint64_t>(config.run.seed));
  LOOM_CHECK(d.tokens.stream->vocab_size() <= d.tokens.tokenizer->vocab_size(), DataError,
             "token shards " + d.tokens.stream->file_list() + " hold ids up to " +
                 std::to_string(d.tokens.stream->vocab_size()) + ", more than the tokenizer's " +
                 std::to_string(d.tokens.tokenizer->vocab_size()) + " tokens");
  if (splits.heldout) {
    d.unigram_loss = unigram_loss(*d.tokens.stream, splits.split, d.tokens.tokenizer->vocab_size());
    d.heldout = std::make_unique<TokenWindowSource>(std::move(*splits.heldout));
  }
  d.train = std::make_unique<TokenWindowSource>(std::move(splits.train));
  return d;
}

std::vector<std::string> write_gpt_hf_export(const GptNet& net, const Tokenizer& tokenizer,
                                             const std::string& dir) {
  fs::create_directories(dir);
  const GptShape& s = net.shape();
  const ParamStore& params = net.params();
  const int64_t C = s.d_model;
  // Values in the file's order: every tensor as float32, Conv1D weights transposed.
  std::vector<std::vector<float>> store;
  std::vector<SafetensorsTensorView> views;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, std::vector<float> v) {
    store.push_back(std::move(v));
    views.push_back(safetensors_f32(name, std::move(shape), store.back()));
  };
  store.reserve(size_t(params.size()) + size_t(8 * s.n_layer) + 4);
  auto copy = [&](const std::string& name) {
    Tensor t = params.value(name);
    std::vector<int64_t> shape;
    for (int i = 0; i < t.shape().rank(); ++i) shape.push_back(t.shape()[i]);
    add(name, shape, std::vector<float>(t.f32(), t.f32() + t.numel()));
  };
  auto transposed = [&](const std::string& name) {   // [out, in] -> Conv1D's [in, out]
    Tensor t = params.value(name);
    const int64_t O = t.shape()[0], I = t.shape()[1];
    std::vector<float> v(size_t(O * I));
    for (int64_t o = 0; o < O; ++o)
      for (int64_t i = 0; i < I; ++i) v[size_t(i * O + o)] = t.f32()[o * I + i];
    add(name, {I, O}, std::move(v));
  };
  auto bias = [&](const std::string& name, int64_t n) {
    if (params.find(name) >= 0) {
      copy(name);
    } else {
      add(name, {n}, std::vector<float>(size_t(n), 0.0f));
    }
  };
  copy("wte.weight");
  copy("wpe.weight");
  for (int l = 0; l < s.n_layer; ++l) {
    copy(block(l, "ln_1.weight"));
    bias(block(l, "ln_1.bias"), C);
    transposed(block(l, "attn.c_attn.weight"));
    bias(block(l, "attn.c_attn.bias"), 3 * C);
    transposed(block(l, "attn.c_proj.weight"));
    bias(block(l, "attn.c_proj.bias"), C);
    copy(block(l, "ln_2.weight"));
    bias(block(l, "ln_2.bias"), C);
    transposed(block(l, "mlp.c_fc.weight"));
    bias(block(l, "mlp.c_fc.bias"), 4 * C);
    transposed(block(l, "mlp.c_proj.weight"));
    bias(block(l, "mlp.c_proj.bias"), C);
  }
  copy("ln_f.weight");
  bias("ln_f.bias", C);
  const std::string model_path = (fs::path(dir) / "model.safetensors").string();
  write_safetensors(model_path, views, {{"format", "pt"}, {"producer", "loom"}});

  nlohmann::json cfg = {
      {"model_type", "gpt2"},
      {"architectures", {"GPT2LMHeadModel"}},
      {"vocab_size", s.vocab_size},
      {"n_positions", s.n_positions},
      {"n_ctx", s.n_positions},
      {"n_embd", s.d_model},
      {"n_layer", s.n_layer},
      {"n_head", s.n_head},
      {"n_inner", nullptr},
      {"activation_function", "gelu_new"},
      {"layer_norm_epsilon", s.ln_eps},
      {"initializer_range", 0.02},
      {"resid_pdrop", 0.0},
      {"embd_pdrop", 0.0},
      {"attn_pdrop", 0.0},
      {"summary_first_dropout", 0.0},
      {"scale_attn_weights", true},
      {"tie_word_embeddings", true},
      {"use_cache", true},
      {"torch_dtype", "float32"},
  };
  if (std::optional<uint32_t> eot = tokenizer.eot_id()) {
    cfg["bos_token_id"] = *eot;
    cfg["eos_token_id"] = *eot;
  }
  const std::string config_path = (fs::path(dir) / "config.json").string();
  write_file_atomically(config_path, cfg.dump(2) + "\n");
  std::vector<std::string> files = {model_path, config_path};
  for (const std::string& f : tokenizer.save_files(dir)) files.push_back(f);
  return files;
}

GptCheckpoint open_gpt_checkpoint(const CheckpointReader& reader, int64_t micro_batch,
                                  int64_t seq_len) {
  LOOM_CHECK(reader.meta().model_kind == "gpt", ConfigError,
             reader.path() + " holds a " + reader.meta().model_kind + " checkpoint, not gpt");
  GptCheckpoint c;
  c.config = std::make_unique<Config>(load_config_text(reader.meta().config_toml, reader.path(), {}));
  c.step = reader.meta().step;
  // The tokenizer its run saved beside the checkpoints, else the configured files.
  const fs::path run_dir = fs::path(reader.path()).parent_path().parent_path();
  c.tokenizer = load_run_tokenizer(*c.config, (run_dir / "tokenizer").string());
  const GptOptions o = gpt_options(*c.config, int(c.tokenizer->vocab_size()));
  c.net = std::make_unique<GptNet>(o.shape, micro_batch, seq_len > 0 ? seq_len : o.shape.n_positions);
  reader.read_model_into(c.net->params());
  return c;
}

void export_gpt_checkpoint(const CheckpointReader& reader, const std::string& out_dir) {
  GptCheckpoint c = open_gpt_checkpoint(reader, 1, 1);
  const std::vector<std::string> files = write_gpt_hf_export(*c.net, *c.tokenizer, out_dir);
  std::string list;
  for (const std::string& f : files) list += (list.empty() ? "" : ", ") + fs::path(f).filename().string();
  log::info("export", "step " + std::to_string(c.step) + " of " + reader.path() + " -> " + out_dir +
                          "/ (" + list + "): loads as transformers' GPT2LMHeadModel");
}

}  // namespace loom
