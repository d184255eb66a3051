// BERT in `loom train`: corpus -> WordPiece token shards in sentence layout (the [tokens]
// stage, reused when unchanged) -> sentence-pair examples with masking (io/bert_examples.h)
// -> Bert -> held-out MLM/NSP figures, Hugging Face export.
//
// Files in the run directory, besides the shared ones (config.toml, metrics.jsonl,
// checkpoints/, eval.json):
//   tokenizer/   vocab.txt, copied at the start so that the run's checkpoints can be
//                evaluated and exported without the original file
//   hf/          after training: Note [BERT export layout] (launch/kinds/bert_files.h)
#include "launch/kinds/bert.h"

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
#include "io/tokenizer.h"
#include "launch/config/config.h"
#include "launch/kinds/bert_files.h"
#include "launch/kinds/tokens.h"
#include "launch/pipeline/model_registry.h"
#include "launch/pipeline/run_report.h"
#include "launch/pipeline/token_stage.h"
#include "launch/run/session.h"
#include "launch/run/train_device.h"

namespace loom {

LOOM_REGISTER_MODEL_SECTION(BertSection, LOOM_CONFIG_BERT,
                            "BERT pretraining: masked LM + next-sentence prediction (models/bert)");

namespace {

namespace fs = std::filesystem;

nlohmann::json eval_json(const BertEval& e) {
  return {{"step", e.step},
          {"mlm_loss", e.mlm_loss},
          {"mlm_accuracy", e.mlm_accuracy},
          {"nsp_loss", e.nsp_loss},
          {"nsp_accuracy", e.nsp_accuracy},
          {"examples", e.examples}};
}

class BertRecipe final : public ModelRecipe {
 public:
  explicit BertRecipe(const Session& session) : session_(session) {}

  std::unique_ptr<Model> build(PipelineContext& ctx) override {
    Communicator& comm = ctx.session.comm();
    const Config& config = ctx.session.config();
    check_bert_section(config);
    data_ = std::make_unique<BertData>(open_bert_data(ctx, config));
    const Tokenizer& tok = *data_->tokens.tokenizer;
    options_ = bert_options(config, int(tok.vocab_size()), bert_special_ids(tok).pad);
    options_.device = train_device(config, ctx.session.comm(), "bert");   // collective with cuda
    if (comm.rank() == 0) tok.save_files((fs::path(ctx.session.run_dir()) / "tokenizer").string());
    auto model = std::make_unique<Bert>(options_, comm, data_->train.get(), data_->heldout.get());
    ctx.report.set_threads(ctx.session.env().threads);
    ctx.report.set_items_name("tokens");
    const BertOptions& o = options_;
    const BertShape& s = o.shape;
    log::info("bert", std::to_string(s.n_layer) + " layers, " + std::to_string(s.n_head) + " heads, hidden " +
                          std::to_string(s.hidden) + ", intermediate " + std::to_string(s.intermediate) +
                          ", vocab " + std::to_string(s.vocab_size) + ": " +
                          fixed(double(model->params().parameter_count()) / 1e6, 2) + " M parameters; seq_len " +
                          std::to_string(o.seq_len) + ", batch " + std::to_string(o.batch_size) +
                          " examples per step over " + std::to_string(comm.size()) + " rank(s), micro-batch " +
                          std::to_string(model->net().micro_batch()) + ", " + std::to_string(o.steps) +
                          " steps, " + (o.optimizer == BertOptimizerKind::kLamb ? "LAMB" : "AdamW") + "; " +
                          std::to_string(data_->train->examples_per_epoch()) + " training pairs per epoch, " +
                          std::to_string(data_->heldout ? data_->heldout->examples_per_epoch() : 0) +
                          " held-out (tables built in " + fixed(data_->build_seconds, 2) + " s)");
    return model;
  }

  Evaluation evaluate(const Model& model, bool final) override {
    Evaluation e;
    if (!final) return e;
    const Bert& m = static_cast<const Bert&>(model);
    nlohmann::json j;
    nlohmann::json curve = nlohmann::json::array();
    for (const BertEval& ev : m.evaluations()) curve.push_back(eval_json(ev));
    j["heldout"] = curve;
    if (!m.evaluations().empty()) {
      const BertEval& last = m.evaluations().back();
      j["mlm_loss"] = last.mlm_loss;
      j["mlm_accuracy"] = last.mlm_accuracy;
      j["nsp_loss"] = last.nsp_loss;
      j["nsp_accuracy"] = last.nsp_accuracy;
    }
    // Chance levels: NSP is balanced (random_next_prob 0.5); MLM's is guessing the most
    // frequent token, which the held-out data would have to say - the uniform guess is 1 / V.
    j["nsp_chance"] = 0.5;
    j["mlm_uniform_chance"] = 1.0 / double(m.options().shape.vocab_size);
    const double train_s = m.train_seconds();
    if (train_s > 0) {
      j["tokens_per_s"] = double(m.steady_tokens()) / train_s;
      j["matmul_gflops"] = m.rank_matmul_flops() / train_s / 1e9;
    }
    j["parameters"] = m.net().params().parameter_count();
    const BertSyncReport sync = m.sync_report();
    j["allreduce"] = {{"buckets", sync.buckets},
                      {"bytes_per_step", sync.bytes_per_step},
                      {"blocking_s", sync.blocking_allreduce_s},
                      {"exposed_s_per_step", sync.exposed_s},
                      {"buckets_done_early", sync.buckets_done_early}};
    e.json = j.dump();
    return e;
  }

  std::vector<std::string> write_exports(const Model& model) override {
    const Bert& m = static_cast<const Bert&>(model);
    const std::string dir = (fs::path(session_.run_dir()) / "hf").string();
    const bool lowercase = session_.config().models.get<TokensSection>().lowercase;
    if (m.net().params().device().is_cpu())
      return write_bert_hf_export(m.net(), *data_->tokens.tokenizer, lowercase, dir);
    // A GPU run exports from a host copy of its parameters (the smallest arena).
    BertNet host(m.net().shape(), 1, 1, 1);
    const Tensor from = m.net().params().values(), to = host.params().values();
    copy_bytes(to.data(), Device::cpu(), from.data(), from.device(), from.nbytes());
    return write_bert_hf_export(host, *data_->tokens.tokenizer, lowercase, dir);
  }

  bool trains_on_gpu() const override { return true; }

  void gather_report(PipelineContext& ctx, const Model& model) override {
    const Bert& m = static_cast<const Bert&>(model);
    const BertSyncReport sync = m.sync_report();
    ctx.report.gather_per_rank(ctx.session.comm(), "allreduce_exposed_per_step", sync.exposed_s, "");
    if (ctx.session.comm().size() > 1)
      log::info("bert", "gradient allreduce: " + std::to_string(sync.buckets) + " bucket(s), " +
                            fixed(double(sync.bytes_per_step) / double(1 << 20), 1) + " MiB per step; blocking it takes " +
                            fixed(sync.blocking_allreduce_s * 1e3, 2) + " ms, " + fixed(sync.exposed_s * 1e3, 2) +
                            " ms per step stayed exposed (waits for slower ranks included); " +
                            fixed(100 * sync.buckets_done_early, 1) +
                            " % of the bucket allreduces complete before backward ended (rank 0)");
  }

 private:
  const Session& session_;
  BertOptions options_;
  std::unique_ptr<BertData> data_;
};

void export_bert(const CheckpointReader& reader, const ExportRequest& request) {
  LOOM_CHECK(request.format == "safetensors" || request.format.empty(), ConfigError,
             "--format " + request.format + ": BERT checkpoints export as safetensors (" + request.path + ")");
  LOOM_CHECK(request.output.empty(), ConfigError, "--output applies to GloVe checkpoints only");
  export_bert_checkpoint(reader, request.out);
}

// `loom eval CKPT`: held-out MLM loss and accuracy, NSP loss and accuracy of a checkpoint.
int evaluate_bert_checkpoint(Session& session, const std::string& path, const std::string& run_dir,
                             int64_t examples) {
  CheckpointReader reader;
  reader.open(path);
  const Config& config = session.config();
  check_bert_section(config);
  BertData data = bert_data_from(
      token_stage(session.comm(), config, run_dir, session.env().threads, TokenLayout::kSentences), config);
  LOOM_CHECK(data.heldout != nullptr, ConfigError,
             "tokens.heldout_fraction is 0: the run has no held-out split to evaluate on");
  const BertOptions o = bert_options(config, int(data.tokens.tokenizer->vocab_size()),
                                     bert_special_ids(*data.tokens.tokenizer).pad);
  Bert model(o, session.comm(), data.train.get(), data.heldout.get());
  reader.read_model_into(model.params());
  const auto t0 = SteadyClock::now();
  const BertEval e = model.evaluate_heldout(session.comm(), examples);
  if (session.comm().rank() == 0) {
    std::printf("checkpoint %s (step %lld)\n", path.c_str(), static_cast<long long>(reader.meta().step));
    std::printf("held-out: %lld sentence pairs of %lld tokens\n", static_cast<long long>(e.examples),
                static_cast<long long>(o.seq_len));
    std::printf("mlm loss %.4f\nmlm accuracy %.4f\n", e.mlm_loss, e.mlm_accuracy);
    std::printf("nsp loss %.4f\nnsp accuracy %.4f (chance 0.5)\n", e.nsp_loss, e.nsp_accuracy);
    std::printf("seconds %.2f\n", seconds_since(t0));
  }
  return 0;
}

}  // namespace

LOOM_REGISTER_LANGUAGE_MODEL(bert, BertRecipe, export_bert, evaluate_bert_checkpoint,
                             "BERT: masked LM + next-sentence prediction on WordPiece sentence pairs");

void check_bert_section(const Config& config) {
  const BertSection& b = config.models.get<BertSection>();
  LOOM_CHECK(b.hidden % b.n_head == 0, ConfigError,
             "bert.hidden = " + std::to_string(b.hidden) + " is not a multiple of bert.n_head = " +
                 std::to_string(b.n_head));
  LOOM_CHECK(b.seq_len <= b.max_position, ConfigError,
             "bert.seq_len = " + std::to_string(b.seq_len) + " exceeds the model's positions, bert.max_position = " +
                 std::to_string(b.max_position));
  LOOM_CHECK(b.max_predictions <= b.seq_len, ConfigError,
             "bert.max_predictions = " + std::to_string(b.max_predictions) + " exceeds bert.seq_len = " +
                 std::to_string(b.seq_len));
  const TokensSection& t = config.models.get<TokensSection>();
  LOOM_CHECK(t.tokenizer == "wordpiece", ConfigError,
             "train.model = \"bert\" reads WordPiece sentence pairs: set tokens.tokenizer = \"wordpiece\" "
             "(it is \"" + t.tokenizer + "\") and tokens.vocab to BERT's vocab.txt (learn one with "
             "`loom tokenizer train --kind wordpiece`)");
}

BertOptions bert_options(const Config& config, int vocab_size, int32_t pad_id) {
  const BertSection& b = config.models.get<BertSection>();
  BertOptions o;
  o.shape.vocab_size = vocab_size;
  o.shape.hidden = int(b.hidden);
  o.shape.n_layer = int(b.n_layer);
  o.shape.n_head = int(b.n_head);
  o.shape.intermediate = int(b.intermediate > 0 ? b.intermediate : 4 * b.hidden);
  o.shape.max_position = int(b.max_position);
  o.shape.ln_eps = b.ln_eps;
  o.shape.pad_id = pad_id;
  o.seq_len = b.seq_len;
  o.max_predictions = b.max_predictions;
  o.batch_size = b.batch_size;
  o.micro_batch = b.micro_batch;
  o.steps = b.steps;
  o.optimizer = b.optimizer == "lamb" ? BertOptimizerKind::kLamb : BertOptimizerKind::kAdamW;
  o.schedule = b.schedule == "cosine" ? BertSchedule::kCosine : BertSchedule::kLinear;
  o.lr = b.lr;
  o.lr_min = b.lr_min;
  o.warmup_steps = b.warmup_steps;
  o.beta1 = b.beta1;
  o.beta2 = b.beta2;
  o.eps = b.eps;
  o.weight_decay = b.weight_decay;
  o.decay_embeddings = b.decay_embeddings;
  o.grad_clip = b.grad_clip;
  o.eval_every = b.eval_every;
  o.eval_batches = b.eval_batches;
  o.buckets.bucket_cap_bytes = int64_t(b.bucket_mb * double(1 << 20));
  o.buckets.first_bucket_cap_bytes = std::min<int64_t>(o.buckets.bucket_cap_bytes, int64_t(1) << 20);
  o.seed = static_cast<uint64_t>(config.run.seed);
  return o;
}

}  // namespace loom
