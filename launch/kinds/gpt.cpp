// GPT in `loom train`: corpus -> token shards (the [tokens] stage, reused when unchanged)
// -> training and held-out windows -> Gpt -> held-out loss, Hugging Face export.
//
// Files in the run directory, besides the shared ones (config.toml, metrics.jsonl,
// checkpoints/, eval.json):
//   tokenizer/   the tokenizer's own files (vocab.json + merges.txt, or char_vocab.txt),
//                copied at the start so that the run's checkpoints can be evaluated,
//                sampled and exported without the original files
//   hf/          after training: model.safetensors + config.json + the tokenizer files, in
//                the layout Hugging Face `transformers` loads as GPT2LMHeadModel
#include "launch/kinds/gpt.h"

#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "core/buffer.h"
#include "core/error.h"
#include "core/log.h"
#include "core/measure.h"
#include "dist/mpi_communicator.h"
#include "io/checkpoint.h"
#include "io/token_windows.h"
#include "io/tokenizer.h"
#include "launch/config/config.h"
#include "launch/kinds/gpt_files.h"
#include "launch/pipeline/model_registry.h"
#include "launch/pipeline/run_report.h"
#include "launch/pipeline/token_stage.h"
#include "launch/run/session.h"
#include "launch/run/train_device.h"

namespace loom {

LOOM_REGISTER_MODEL_SECTION(GptSection, LOOM_CONFIG_GPT, "GPT-2 pretraining (models/gpt)");

namespace {

namespace fs = std::filesystem;

class GptRecipe final : public ModelRecipe {
 public:
  explicit GptRecipe(const Session& session) : session_(session) {}

  std::unique_ptr<Model> build(PipelineContext& ctx) override {
    Communicator& comm = ctx.session.comm();
    const Config& config = ctx.session.config();
    check_gpt_section(config);
    data_ = std::make_unique<GptData>(open_gpt_data(ctx, config));
    options_ = gpt_options(config, int(data_->tokens.tokenizer->vocab_size()));
    options_.device = train_device(config, ctx.session.comm(), "gpt");   // collective with cuda
    if (comm.rank() == 0)
      data_->tokens.tokenizer->save_files((fs::path(ctx.session.run_dir()) / "tokenizer").string());
    auto model = std::make_unique<Gpt>(options_, comm, data_->train.get(), data_->heldout.get());
    ctx.report.set_threads(ctx.session.env().threads);
    ctx.report.set_items_name("tokens");
    const GptOptions& o = options_;
    const GptShape& s = o.shape;
    log::info("gpt", std::to_string(s.n_layer) + " layers, " + std::to_string(s.n_head) +
                         " heads, d_model " + std::to_string(s.d_model) + ", vocab " +
                         std::to_string(s.vocab_size) + ", " + std::to_string(s.n_positions) +
                         " positions" + (s.bias ? "" : ", no biases") + ": " +
                         fixed(double(model->params().parameter_count()) / 1e6, 2) +
                         " M parameters; seq_len " + std::to_string(o.seq_len) + ", batch " +
                         std::to_string(o.batch_size) + " sequences (" +
                         std::to_string(o.batch_size * o.seq_len) + " tokens) per step over " +
                         std::to_string(comm.size()) + " rank(s), micro-batch " +
                         std::to_string(model->net().micro_batch()) + ", " +
                         std::to_string(o.steps) + " steps; " +
                         std::to_string(data_->train->windows_per_epoch()) +
                         " training windows per epoch, " +
                         std::to_string(data_->heldout ? data_->heldout->windows_per_epoch() : 0) +
                         " held-out");
    return model;
  }

  Evaluation evaluate(const Model& model, bool final) override {
    Evaluation e;
    if (!final) return e;
    const Gpt& m = static_cast<const Gpt&>(model);
    nlohmann::json j;
    nlohmann::json curve = nlohmann::json::array();
    for (const GptEval& ev : m.evaluations())
      curve.push_back({{"step", ev.step}, {"loss", ev.loss}, {"perplexity", std::exp(ev.loss)}});
    j["heldout"] = curve;
    if (!m.evaluations().empty()) {
      j["heldout_loss"] = m.evaluations().back().loss;
      j["perplexity"] = std::exp(m.evaluations().back().loss);
    }
    if (data_ && data_->unigram_loss > 0) j["unigram_loss"] = data_->unigram_loss;
    // Steady state: the steps after the run's first (Gpt::train_seconds); the summary
    // line's rate covers every step.
    const double train_s = m.train_seconds();
    if (train_s > 0) {
      j["tokens_per_s"] = double(m.steady_tokens()) / train_s;
      j["matmul_gflops"] = m.rank_matmul_flops() / train_s / 1e9;   // this rank's
    }
    j["parameters"] = m.net().params().parameter_count();
    const GptSyncReport sync = m.sync_report();
    j["allreduce"] = {{"buckets", sync.buckets},
                      {"bytes_per_step", sync.bytes_per_step},
                      {"blocking_s", sync.blocking_allreduce_s},
                      {"exposed_s_per_step", sync.exposed_s},
                      {"hidden_fraction", sync.hidden_fraction},
                      {"buckets_done_early", sync.buckets_done_early}};
    e.json = j.dump();
    return e;
  }

  bool trains_on_gpu() const override { return true; }

  std::vector<std::string> write_exports(const Model& model) override {
    const Gpt& m = static_cast<const Gpt&>(model);
    const std::string dir = (fs::path(session_.run_dir()) / "hf").string();
    if (m.net().params().device().is_cpu()) return write_gpt_hf_export(m.net(), *data_->tokens.tokenizer, dir);
    // A GPU run exports from a host copy of its parameters (the smallest arena: one token).
    GptNet host(m.net().shape(), 1, 1);
    const Tensor from = m.net().params().values(), to = host.params().values();
    copy_bytes(to.data(), Device::cpu(), from.data(), from.device(), from.nbytes());
    return write_gpt_hf_export(host, *data_->tokens.tokenizer, dir);
  }

  void gather_report(PipelineContext& ctx, const Model& model) override {
    const Gpt& m = static_cast<const Gpt&>(model);
    const GptSyncReport sync = m.sync_report();
    ctx.report.gather_per_rank(ctx.session.comm(), "allreduce_exposed_per_step", sync.exposed_s,
                               "");
    if (ctx.session.comm().size() > 1)
      log::info("gpt", "gradient allreduce: " + std::to_string(sync.buckets) + " bucket(s), " +
                           fixed(double(sync.bytes_per_step) / double(1 << 20), 1) +
                           " MiB per step; blocking it takes " +
                           fixed(sync.blocking_allreduce_s * 1e3, 2) + " ms, " +
                           fixed(sync.exposed_s * 1e3, 2) +
                           " ms per step stayed exposed (waits for slower ranks included): " +
                           fixed(100 * sync.hidden_fraction, 1) + " % hidden behind backward; " +
                           fixed(100 * sync.buckets_done_early, 1) +
                           " % of the bucket allreduces complete before backward ended (rank 0)");
  }

 private:
  const Session& session_;
  GptOptions options_;
  std::unique_ptr<GptData> data_;
};

void export_gpt(const CheckpointReader& reader, const ExportRequest& request) {
  LOOM_CHECK(request.format == "safetensors" || request.format.empty(), ConfigError,
             "--format " + request.format + ": GPT checkpoints export as safetensors (" +
                 request.path + ")");
  LOOM_CHECK(request.output.empty(), ConfigError, "--output applies to GloVe checkpoints only");
  export_gpt_checkpoint(reader, request.out);
}

// Collective: the held-out loss of a GPT checkpoint on its run's held-out split.
int evaluate_gpt_checkpoint(Session& session, const std::string& path, const std::string& run_dir,
                        int64_t windows) {
  CheckpointReader reader;
  reader.open(path);
  check_gpt_section(session.config());
  GptData data = gpt_data_from(
      token_stage(session.comm(), session.config(), run_dir, session.env().threads), session.config());
  LOOM_CHECK(data.heldout != nullptr, ConfigError,
             "tokens.heldout_fraction is 0: the run has no held-out split to evaluate on");
  GptOptions o = gpt_options(session.config(), int(data.tokens.tokenizer->vocab_size()));
  Gpt model(o, session.comm(), data.train.get(), data.heldout.get());
  reader.read_model_into(model.params());
  const auto t0 = SteadyClock::now();
  const GptEval e = model.evaluate_heldout(session.comm(), windows);
  if (session.comm().rank() == 0) {
    std::printf("checkpoint %s (step %lld)\n", path.c_str(), static_cast<long long>(reader.meta().step));
    std::printf("held-out: %lld windows of %lld tokens\n", static_cast<long long>(e.windows),
                static_cast<long long>(o.seq_len));
    std::printf("loss %.4f\nperplexity %.2f\n", e.loss, std::exp(e.loss));
    if (data.unigram_loss > 0)
      std::printf("unigram baseline loss %.4f (perplexity %.2f)\n", data.unigram_loss,
                  std::exp(data.unigram_loss));
    std::printf("seconds %.2f\n", seconds_since(t0));
  }
  return 0;
}

}  // namespace

LOOM_REGISTER_LANGUAGE_MODEL(gpt, GptRecipe, export_gpt, evaluate_gpt_checkpoint,
                    "GPT-2: causal language model on byte-level BPE or character tokens");

GptOptions gpt_options(const Config& config, int vocab_size) {
  const GptSection& g = config.models.get<GptSection>();
  GptOptions o;
  o.shape.n_layer = int(g.n_layer);
  o.shape.n_head = int(g.n_head);
  o.shape.d_model = int(g.d_model);
  o.shape.n_positions = int(g.n_positions > 0 ? g.n_positions : g.seq_len);
  o.shape.vocab_size = vocab_size;
  o.shape.bias = g.bias;
  o.shape.ln_eps = g.ln_eps;
  o.seq_len = g.seq_len;
  o.batch_size = g.batch_size;
  o.micro_batch = g.micro_batch;
  o.steps = g.steps;
  o.lr = g.lr;
  o.lr_min = g.lr_min;
  o.warmup_steps = g.warmup_steps;
  o.beta1 = g.beta1;
  o.beta2 = g.beta2;
  o.eps = g.eps;
  o.weight_decay = g.weight_decay;
  o.decay_embeddings = g.decay_embeddings;
  o.grad_clip = g.grad_clip;
  o.eval_every = g.eval_every;
  o.eval_batches = g.eval_batches;
  o.buckets.bucket_cap_bytes = int64_t(g.bucket_mb * double(1 << 20));
  o.buckets.first_bucket_cap_bytes = std::min<int64_t>(o.buckets.bucket_cap_bytes, int64_t(1) << 20);
  o.seed = static_cast<uint64_t>(config.run.seed);
  return o;
}

}  // namespace loom
