// `loom train` for word2vec (pipeline_word2vec.h).
#include "launch/pipeline/pipeline_word2vec.h"

#include <sys/resource.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>

#include "core/error.h"
#include "core/log.h"
#include "dist/mpi_communicator.h"
#include "launch/config/config.h"
#include "launch/pipeline/pipeline_data.h"
#include "launch/pipeline/pipeline_eval.h"
#include "launch/pipeline/pipeline_glove.h"
#include "launch/run/session.h"
#include "launch/run/trainer.h"

namespace loom {
namespace {

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

EmbeddingTable table_of(const Word2Vec& model) {
  EmbeddingTable t;
  t.words = model.vocabulary().tokens();
  t.vectors = model.output_vectors();
  t.dim = model.options().dim;
  return t;
}

struct EpochRecord {
  int64_t epoch = 0;       // 1-based: epochs completed
  double loss = 0;         // mean loss per prediction, all ranks
  bool partial = false;    // the epoch began before a resume
  double analogy = -1;     // total accuracy, or -1 when not evaluated
};

// The Model the Trainer runs: forwards to the Word2Vec and, when a step completes an epoch
// (identically on every rank), sums the epoch's loss over ranks (one allreduce of two
// doubles) and every eval.every_epochs epochs has rank 0 score the analogies
// (Note [Epoch watch] in pipeline_glove.cpp: the same design).
class Word2VecWatch final : public Model {
 public:
  Word2VecWatch(Word2Vec& model, Communicator& comm, std::string questions, int64_t every, int64_t restrict_vocab)
      : model_(model), comm_(comm), questions_(std::move(questions)), every_(every), restrict_(restrict_vocab) {}

  std::string_view kind() const override { return model_.kind(); }
  ParamStore& params() override { return model_.params(); }
  int64_t total_steps() const override { return model_.total_steps(); }
  int64_t steps_per_epoch() const override { return model_.steps_per_epoch(); }
  std::string_view item_unit() const override { return model_.item_unit(); }
  std::vector<OptimizerSlot> optimizer_slots() override { return model_.optimizer_slots(); }
  std::vector<RankState> rank_state() const override { return model_.rank_state(); }
  std::optional<VocabView> vocab() const override { return model_.vocab(); }
  int64_t tokens_seen() const override { return model_.tokens_seen(); }
  std::vector<std::string> shape_keys() const override { return model_.shape_keys(); }
  bool checkpoint_ready(int64_t steps_done) const override { return model_.checkpoint_ready(steps_done); }
  void restore(const CheckpointReader& reader, int64_t step) override {
    model_.restore(reader, step);
    resumed_mid_epoch_ = model_.slice() != 0;   // at another world size the step is not S * epoch + slice
  }

  StepStats train_step(const StepContext& ctx) override {
    const int64_t epoch = model_.epoch();
    StepStats stats = model_.train_step(ctx);
    loss_sum_ += stats.loss_sum;
    examples_ += static_cast<double>(stats.examples);
    if (model_.epoch() != epoch) end_epoch();
    return stats;
  }

  const std::vector<EpochRecord>& history() const { return history_; }

 private:
  void end_epoch() {
    double sums[2] = {loss_sum_, examples_};
    comm_.allreduce(Tensor::of(sums, 2), ReduceOp::kSum);
    loss_sum_ = examples_ = 0;
    EpochRecord rec{model_.epoch(), sums[1] > 0 ? sums[0] / sums[1] : 0.0, resumed_mid_epoch_, -1};
    resumed_mid_epoch_ = false;
    std::string line = "epoch " + std::to_string(rec.epoch) + "/" + std::to_string(model_.options().epochs) +
                       ": loss " + fixed(rec.loss, 5) + (rec.partial ? " (steps since the resume)" : "");
    if (comm_.rank() == 0 && every_ > 0 && !questions_.empty() && rec.epoch % every_ == 0) {
      AnalogyOptions ao;
      ao.restrict_vocab = restrict_;
      AnalogyResult r = evaluate_analogy(table_of(model_), questions_, ao);
      rec.analogy = r.all.accuracy();
      line += ", analogies " + fixed(100.0 * rec.analogy, 2) + " % (semantic " + fixed(100.0 * r.semantic.accuracy(), 1) +
              " %, syntactic " + fixed(100.0 * r.syntactic.accuracy(), 1) + " %)";
    }
    log::info("word2vec", line);
    history_.push_back(rec);
  }

  Word2Vec& model_;
  Communicator& comm_;
  std::string questions_;
  int64_t every_;
  int64_t restrict_;
  double loss_sum_ = 0, examples_ = 0;
  bool resumed_mid_epoch_ = false;
  std::vector<EpochRecord> history_;
};

double peak_rss_gb() {
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  return static_cast<double>(ru.ru_maxrss) / (1024.0 * 1024.0);
}

std::vector<VectorFormat> export_formats(const Config& config) {
  std::vector<VectorFormat> formats;
  for (const std::string& f : config.vectors.formats) {
    try {
      formats.push_back(parse_vector_format(f));
    } catch (const ConfigError&) {
      throw ConfigError("vectors.formats: unknown format '" + f + "' (glove|word2vec|word2vec-bin)");
    }
  }
  return formats;
}

std::string analogy_questions(const Config& config, const CorpusPlan& corpus) {
  const std::string q = config.eval.analogy.empty() ? corpus.planted_questions : config.eval.analogy;
  for (const std::string& path : {q, config.eval.similarity})
    LOOM_CHECK(path.empty() || std::filesystem::is_regular_file(path), IoError,
               "evaluation file " + path + " does not exist (eval.analogy / eval.similarity)");
  return q;
}

struct Report {
  StageTimes stages;
  double read_s = 0, train_s = 0, export_s = 0, eval_s = 0, total_s = 0;
  int64_t words = 0;
  std::vector<double> rss_gb;
  std::vector<double> wait_s;   // (world,) seconds each rank waited for the others at step ends
  std::vector<double> sync_s;   // (world,) seconds each rank spent in the synchronisation
};

// Rank 0: the vector files, the evaluation (printed) and RUN_DIR/eval.json.
void export_and_evaluate(const Config& config, const std::string& run_dir, const Word2Vec& model,
                         const std::string& questions, const Word2VecWatch& watch, Report& report, int world) {
  auto t_export = Clock::now();
  const EmbeddingTable table = table_of(model);
  std::vector<std::string> files;
  for (VectorFormat f : export_formats(config)) {
    const std::string path = run_dir + "/" + vector_file_name(config.vectors.name, f);
    write_vectors(path, f, table);
    files.push_back(path);
    log::info("export", std::string("wrote ") + path + " (" + vector_format_name(f) + ", " +
                            std::to_string(table.size()) + " x " + std::to_string(table.dim) + ")");
  }
  report.export_s = since(t_export);
  nlohmann::json j;
  auto t0 = Clock::now();
  if (!questions.empty()) {
    AnalogyOptions ao;
    ao.restrict_vocab = config.eval.restrict;
    AnalogyResult r = evaluate_analogy(table, questions, ao);
    std::printf("analogy questions %s (3CosAdd, candidates: %lld most frequent words)\n%s", questions.c_str(),
                static_cast<long long>(config.eval.restrict), format_analogy(r).c_str());
    std::vector<AnalogyExample> ex = analogy_examples(table, questions, config.eval.restrict, config.eval.examples);
    if (!ex.empty()) std::printf("examples:\n%s", format_analogy_examples(ex).c_str());
    j["analogy"] = nlohmann::json::parse(analogy_json(r));
    j["analogy"]["questions_file"] = questions;
    j["examples"] = nlohmann::json::parse(examples_json(ex));
  }
  if (!config.eval.similarity.empty()) {
    SimilarityResult s = evaluate_similarity(table, config.eval.similarity);
    std::printf("word similarity %s: %s", config.eval.similarity.c_str(), format_similarity(s).c_str());
    j["similarity"] = nlohmann::json::parse(similarity_json(s));
    j["similarity"]["pairs_file"] = config.eval.similarity;
  }
  std::fflush(stdout);
  report.eval_s = since(t0);
  nlohmann::json epochs = nlohmann::json::array();
  for (const EpochRecord& e : watch.history()) {
    nlohmann::json rec = {{"epoch", e.epoch}, {"loss", e.loss}, {"partial", e.partial}};
    if (e.analogy >= 0) rec["analogy"] = e.analogy;
    epochs.push_back(rec);
  }
  j["epochs"] = epochs;
  if (!watch.history().empty()) j["final_loss"] = watch.history().back().loss;
  j["vectors"] = files;
  j["world_size"] = world;
  j["threads"] = model.options().threads;
  j["arch"] = word2vec_arch_name(model.options().arch);
  j["seconds"] = {{"vocab", report.stages.vocab_s}, {"vocab_reused", report.stages.vocab_reused},
                  {"read", report.read_s}, {"train", report.train_s}, {"export", report.export_s},
                  {"eval", report.eval_s}, {"wait_per_rank", report.wait_s},
                  {"sync_per_rank", report.sync_s}};
  j["words"] = report.words;
  j["peak_rss_gb"] = report.rss_gb;
  const std::string path = run_dir + "/eval.json";
  std::ofstream out(path + ".tmp", std::ios::trunc);
  out << j.dump(2) << "\n";
  out.close();
  LOOM_CHECK(static_cast<bool>(out), IoError, "cannot write " + path + ".tmp");
  std::filesystem::rename(path + ".tmp", path);
}

void log_summary(const Report& r, const Word2VecWatch& watch, int world, int threads) {
  const double rate = r.train_s > 0 ? static_cast<double>(r.words) / r.train_s : 0;
  std::string rss;
  for (double g : r.rss_gb) rss += (rss.empty() ? "" : ", ") + fixed(g, 2);
  std::string sync, wait;
  for (double s : r.sync_s) sync += (sync.empty() ? "" : ", ") + fixed(s, 2);
  for (double s : r.wait_s) wait += (wait.empty() ? "" : ", ") + fixed(s, 2);
  log::info("word2vec", "pipeline: vocab " + fixed(r.stages.vocab_s, 2) + " s" + (r.stages.vocab_reused ? " (reused)" : "") +
                            ", reading the shard " + fixed(r.read_s, 2) + " s, training " + fixed(r.train_s, 2) +
                            " s, export " + fixed(r.export_s, 2) + " s, evaluation " + fixed(r.eval_s, 2) + " s, total " +
                            fixed(r.total_s, 2) + " s");
  log::info("word2vec", "final loss " +
                            (watch.history().empty() ? std::string("n/a") : fixed(watch.history().back().loss, 5)) + "; " +
                            fixed(rate / 1e3, 1) + " k words/s in training (" +
                            fixed(rate / 1e3 / std::max(1, world * threads), 1) + " per core, " + std::to_string(world) +
                            " rank(s) x " + std::to_string(threads) + " thread(s)); peak RSS per rank " + rss + " GB" +
                            (world > 1 ? "; per rank: waiting for the other ranks " + wait + " s, synchronisation " + sync + " s" : ""));
}

}  // namespace

Word2VecOptions word2vec_options(const Config& config, int run_threads) {
  const Word2VecSection& w = config.word2vec;
  Word2VecOptions o;
  o.arch = parse_word2vec_arch(w.arch);
  o.dim = w.dim;
  o.window = w.window;
  o.negative = w.negative;
  o.hs = w.hs;
  o.shared_negatives = w.shared_negatives;
  o.sample = w.sample;
  o.alpha = w.alpha;
  o.min_alpha_ratio = w.min_alpha;
  o.ns_power = w.ns_power;
  o.epochs = w.epochs;
  o.threads = w.threads > 0 ? static_cast<int>(w.threads) : std::max(1, run_threads);
  o.sync = parse_word2vec_sync(w.sync);
  o.step_words = w.step_words;
  o.average_above = w.average_above;
  o.rare_below = w.rare_below;
  o.rare_every = w.rare_every;
  o.max_sentence_words = w.max_sentence_words;
  o.seed = static_cast<uint64_t>(config.run.seed);
  return o;
}

int run_word2vec_pipeline(Session& session) {
  const auto t_start = Clock::now();
  const Config& config = session.config();
  MpiCommunicator& comm = session.comm();
  const std::string& run_dir = session.run_dir();
  const Word2VecOptions options = word2vec_options(config, session.env().threads);
  export_formats(config);   // a bad format is a config error now, not after training
  LOOM_CHECK(options.negative > 0 || options.hs, ConfigError,
             "word2vec.negative is 0 and word2vec.hs is false: nothing to train (set one)");

  Report report;
  CorpusPlan corpus = prepare_corpus(comm, config, run_dir);
  const std::string questions = analogy_questions(config, corpus);
  Vocab vocab = vocab_stage(comm, config, corpus, run_dir, options.threads, &report.stages);
  auto t_read = Clock::now();
  if (!corpus.layout) corpus.layout = CorpusLayout::scan(comm, corpus.options);
  TokenizedShard shard = read_tokenized_shard(*corpus.layout, corpus.options, vocab, comm.rank(), comm.size(),
                                              options.threads, options.max_sentence_words);
  report.read_s = since(t_read);

  auto t_train = Clock::now();
  std::unique_ptr<Word2Vec> model = make_word2vec(options, comm, vocab, std::move(shard));
  log::info("word2vec", std::string(word2vec_arch_name(options.arch)) + ", " + std::to_string(vocab.size()) +
                            " words in the vocabulary, " + std::to_string(model->total_words()) +
                            " words per epoch, D " + std::to_string(options.dim) + ", window " +
                            std::to_string(options.window) + ", negative " + std::to_string(options.negative) +
                            (options.hs ? ", hierarchical softmax" : "") + ", sample " + fixed(options.sample, 6) +
                            ", alpha " + fixed(options.initial_alpha(), 4) + ", " + std::to_string(options.epochs) +
                            " epochs of " + std::to_string(model->steps_per_epoch()) + " step(s), " +
                            std::to_string(comm.size()) + " rank(s) x " + std::to_string(options.threads) +
                            " thread(s)" + (options.threads > 1 ? " (Hogwild: results depend on timing)" : "") +
                            ", sync " + word2vec_sync_name(options.sync) +
                            (comm.size() > 1 && options.sync == Word2VecSync::kDelta &&
                                     (model->hot_words() > 0 || model->hot_nodes() > 0)
                                 ? " (rows of the " + std::to_string(model->hot_words()) + " most frequent words" +
                                       (options.hs ? " and " + std::to_string(model->hot_nodes()) + " top inner nodes" : "") +
                                       " averaged)"
                                 : "") +
                            (comm.size() > 1 && options.sync == Word2VecSync::kDelta &&
                                     model->rare_from() < model->vocabulary().size()
                                 ? ", the rows of the " + std::to_string(model->vocabulary().size() - model->rare_from()) +
                                       " rarest words summed every " + std::to_string(options.rare_every) + " steps"
                                 : ""));
  Word2VecWatch watch(*model, comm, questions, config.eval.every_epochs, config.eval.restrict);
  Trainer trainer(comm, watch, trainer_options(config, run_dir));
  const int64_t seen_before = model->tokens_seen();
  const int rc = trainer.run();
  report.train_s = since(t_train);
  report.words = model->tokens_seen() - seen_before;
  if (rc != 0) return rc;   // stopped by a signal: the checkpoint is written; resume later

  report.rss_gb.assign(static_cast<size_t>(comm.size()), 0.0);
  double mine = peak_rss_gb();
  comm.allgather(Tensor::of(&mine, 1), Tensor::of(report.rss_gb.data(), comm.size()));
  report.wait_s.assign(static_cast<size_t>(comm.size()), 0.0);
  report.sync_s.assign(static_cast<size_t>(comm.size()), 0.0);
  double my_wait = model->wait_seconds(), my_sync = model->sync_seconds();
  comm.allgather(Tensor::of(&my_wait, 1), Tensor::of(report.wait_s.data(), comm.size()));
  comm.allgather(Tensor::of(&my_sync, 1), Tensor::of(report.sync_s.data(), comm.size()));
  if (comm.rank() == 0) {
    export_and_evaluate(config, run_dir, *model, questions, watch, report, comm.size());
    report.total_s = since(t_start);
    log_summary(report, watch, comm.size(), options.threads);
    log::info("word2vec", "evaluation written to " + run_dir + "/eval.json");
  }
  comm.barrier();   // rank 0's export/evaluation failure still reaches every rank (abort)
  return 0;
}

}  // namespace loom
