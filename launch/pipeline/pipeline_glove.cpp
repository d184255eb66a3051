// `loom train` for GloVe, `loom vocab`, `loom cooccur` (pipeline_glove.h).
#include "launch/pipeline/pipeline_glove.h"

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

EmbeddingTable table_of(const Glove& glove) {
  EmbeddingTable t;
  t.words = glove.vocabulary().tokens();
  t.vectors = glove.output_vectors();
  t.dim = glove.output_dim();
  return t;
}

// One line of the per-epoch history: loss over all ranks, and the analogy accuracy when it
// was evaluated that epoch (rank 0).
struct EpochRecord {
  int64_t epoch = 0;          // 1-based: epochs completed
  double loss = 0;            // mean 0.5 f(x) diff^2 per non-zero, all ranks
  bool partial = false;       // the epoch began before a resume: loss over its remaining steps
  double analogy = -1;        // total accuracy, or -1 when not evaluated
};

// Note [Epoch watch]
// The Trainer owns the loop; GloVe's epochs are a model matter. GloveWatch is the Model the
// Trainer runs: it forwards everything to the Glove and, when a step completes an epoch
// (identically on every rank: steps per epoch are equal everywhere), sums the epoch's loss
// over ranks (one allreduce of two doubles, the same collective on every rank) and, every
// eval.every_epochs epochs, has rank 0 score the analogy questions on the current vectors.
// The others wait for rank 0 in the next synchronisation, so keep it off for timing runs.
class GloveWatch final : public Model {
 public:
  GloveWatch(Glove& glove, Communicator& comm, std::string questions, int64_t every, int64_t restrict_vocab)
      : glove_(glove), comm_(comm), questions_(std::move(questions)), every_(every), restrict_(restrict_vocab) {}

  std::string_view kind() const override { return glove_.kind(); }
  ParamStore& params() override { return glove_.params(); }
  int64_t total_steps() const override { return glove_.total_steps(); }
  int64_t steps_per_epoch() const override { return glove_.steps_per_epoch(); }
  std::string_view item_unit() const override { return glove_.item_unit(); }
  std::vector<OptimizerSlot> optimizer_slots() override { return glove_.optimizer_slots(); }
  std::vector<RankState> rank_state() const override { return glove_.rank_state(); }
  std::optional<VocabView> vocab() const override { return glove_.vocab(); }
  int64_t tokens_seen() const override { return glove_.tokens_seen(); }
  std::vector<std::string> shape_keys() const override { return glove_.shape_keys(); }
  bool checkpoint_ready(int64_t steps_done) const override { return glove_.checkpoint_ready(steps_done); }
  void restore(const CheckpointReader& reader, int64_t step) override {
    glove_.restore(reader, step);
    resumed_mid_epoch_ = glove_.slice() != 0;   // at another world size the step is not S * epoch + slice
  }

  StepStats train_step(const StepContext& ctx) override {
    const int64_t epoch = glove_.epoch();
    StepStats stats = glove_.train_step(ctx);
    loss_sum_ += stats.loss_sum;
    examples_ += static_cast<double>(stats.examples);
    if (glove_.epoch() != epoch) end_epoch();
    return stats;
  }

  const std::vector<EpochRecord>& history() const { return history_; }

 private:
  void end_epoch() {
    double sums[2] = {loss_sum_, examples_};
    comm_.allreduce(Tensor::of(sums, 2), ReduceOp::kSum);
    loss_sum_ = examples_ = 0;
    EpochRecord rec{glove_.epoch(), sums[1] > 0 ? sums[0] / sums[1] : 0.0, resumed_mid_epoch_, -1};
    resumed_mid_epoch_ = false;
    std::string line = "epoch " + std::to_string(rec.epoch) + "/" + std::to_string(glove_.options().epochs) +
                       ": loss " + fixed(rec.loss, 5) + (rec.partial ? " (steps since the resume)" : "");
    if (comm_.rank() == 0 && every_ > 0 && !questions_.empty() && rec.epoch % every_ == 0) {
      AnalogyOptions ao;
      ao.restrict_vocab = restrict_;
      AnalogyResult r = evaluate_analogy(table_of(glove_), questions_, ao);
      rec.analogy = r.all.accuracy();
      line += ", analogies " + fixed(100.0 * rec.analogy, 2) + " % (semantic " +
              fixed(100.0 * r.semantic.accuracy(), 1) + " %, syntactic " + fixed(100.0 * r.syntactic.accuracy(), 1) +
              " %; " + std::to_string(r.all.correct) + " correct of " + std::to_string(r.all.answered) + " answered)";
    }
    log::info("glove", line);
    history_.push_back(rec);
  }

  Glove& glove_;
  Communicator& comm_;
  std::string questions_;
  int64_t every_;
  int64_t restrict_;
  double loss_sum_ = 0, examples_ = 0;   // this rank, the epoch so far
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

// The questions the run evaluates: eval.analogy, else the planted ones. Checked before
// training so that a typo does not cost a whole run.
std::string analogy_questions(const Config& config, const CorpusPlan& corpus) {
  const std::string q = config.eval.analogy.empty() ? corpus.planted_questions : config.eval.analogy;
  for (const std::string& path : {q, config.eval.similarity})
    LOOM_CHECK(path.empty() || std::filesystem::is_regular_file(path), IoError,
               "evaluation file " + path + " does not exist (eval.analogy / eval.similarity)");
  return q;
}

struct PipelineReport {
  StageTimes stages;
  double train_s = 0, export_s = 0, eval_s = 0, total_s = 0;
  int64_t updates = 0;
  std::vector<double> rss_gb;   // (world,) peak RSS per rank
};

// Rank 0: writes the vectors in every configured format; returns the files.
std::vector<std::string> export_vectors(const Config& config, const std::string& run_dir, const EmbeddingTable& table) {
  std::vector<std::string> files;
  for (VectorFormat f : export_formats(config)) {
    const std::string path = run_dir + "/" + vector_file_name(config.vectors.name, f);
    write_vectors(path, f, table);
    files.push_back(path);
    log::info("export", std::string("wrote ") + path + " (" + vector_format_name(f) + ", " +
                            std::to_string(table.size()) + " x " + std::to_string(table.dim) + ")");
  }
  return files;
}

// Rank 0: prints the evaluation and writes RUN_DIR/eval.json.
void evaluate_and_report(const Config& config, const std::string& run_dir, const EmbeddingTable& table,
                         const std::string& questions, const GloveWatch& watch, const std::vector<std::string>& files,
                         PipelineReport& report, int world, int threads) {
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
  j["threads"] = threads;
  j["seconds"] = {{"vocab", report.stages.vocab_s}, {"vocab_reused", report.stages.vocab_reused},
                  {"cooccur", report.stages.cooccur_s}, {"cooccur_reused", report.stages.cooccur_reused},
                  {"train", report.train_s}, {"export", report.export_s}, {"eval", report.eval_s}};
  j["updates"] = report.updates;
  j["peak_rss_gb"] = report.rss_gb;
  const std::string path = run_dir + "/eval.json";
  std::ofstream out(path + ".tmp", std::ios::trunc);
  out << j.dump(2) << "\n";
  out.close();
  LOOM_CHECK(static_cast<bool>(out), IoError, "cannot write " + path + ".tmp");
  std::filesystem::rename(path + ".tmp", path);
}

void log_summary(const PipelineReport& r, const GloveWatch& watch, int world, int threads) {
  const double rate = r.train_s > 0 ? static_cast<double>(r.updates) / r.train_s : 0;
  std::string rss;
  for (double g : r.rss_gb) rss += (rss.empty() ? "" : ", ") + fixed(g, 2);
  log::info("glove", "pipeline: vocab " + fixed(r.stages.vocab_s, 2) + " s" + (r.stages.vocab_reused ? " (reused)" : "") +
                         ", cooccur " + fixed(r.stages.cooccur_s, 2) + " s" +
                         (r.stages.cooccur_reused ? " (reused)" : "") + ", training " + fixed(r.train_s, 2) +
                         " s, export " + fixed(r.export_s, 2) + " s, evaluation " + fixed(r.eval_s, 2) +
                         " s, total " + fixed(r.total_s, 2) + " s");
  log::info("glove", "final loss " + (watch.history().empty() ? std::string("n/a") : fixed(watch.history().back().loss, 5)) +
                         "; " + fixed(rate / 1e6, 2) + " M updates/s (" +
                         fixed(rate / 1e6 / std::max(1, world * threads), 2) + " per core, " + std::to_string(world) +
                         " rank(s) x " + std::to_string(threads) + " thread(s)); peak RSS per rank " + rss + " GB");
}

}  // namespace

GloveOptions glove_options(const Config& config, int run_threads) {
  const GloveSection& g = config.glove;
  GloveOptions o;
  o.dim = g.dim;
  o.x_max = g.x_max;
  o.alpha = g.alpha;
  o.eta = g.eta;
  o.grad_clip = g.grad_clip;
  o.epochs = g.epochs;
  o.threads = g.threads > 0 ? static_cast<int>(g.threads) : std::max(1, run_threads);
  o.sync = parse_glove_sync(g.sync);
  o.step_nnz = g.step_nnz;
  o.reshuffle = g.reshuffle;
  o.seed = static_cast<uint64_t>(config.run.seed);
  o.output = parse_glove_output(g.output);
  return o;
}

std::string vector_file_name(const std::string& name, VectorFormat format) {
  switch (format) {
    case VectorFormat::kGloveText: return name + ".txt";
    case VectorFormat::kWord2VecText: return name + ".w2v.txt";
    case VectorFormat::kWord2VecBinary: return name + ".bin";
  }
  return name;
}

int run_glove_pipeline(Session& session) {
  const auto t_start = Clock::now();
  const Config& config = session.config();
  MpiCommunicator& comm = session.comm();
  const std::string& run_dir = session.run_dir();
  const int threads = session.env().threads;
  const GloveOptions options = glove_options(config, threads);
  export_formats(config);   // a bad format is a config error now, not after training

  PipelineReport report;
  CorpusPlan corpus = prepare_corpus(comm, config, run_dir);
  const std::string questions = analogy_questions(config, corpus);
  Vocab vocab = vocab_stage(comm, config, corpus, run_dir, threads, &report.stages);
  CooccurResult cooccur = cooccur_stage(comm, config, corpus, vocab, run_dir, threads, &report.stages);

  auto t_train = Clock::now();
  std::unique_ptr<Glove> glove = make_glove(options, comm, vocab, std::move(cooccur.entries));
  log::info("glove", std::to_string(vocab.size()) + " words, D " + std::to_string(options.dim) + ", " +
                         std::to_string(options.epochs) + " epochs of " + std::to_string(glove->steps_per_epoch()) +
                         " step(s), " + std::to_string(comm.size()) + " rank(s) x " + std::to_string(options.threads) +
                         " thread(s)" + (options.threads > 1 ? " (Hogwild: results depend on timing)" : "") +
                         ", sync " + glove_sync_name(options.sync));
  GloveWatch watch(*glove, comm, questions, config.eval.every_epochs, config.eval.restrict);
  Trainer trainer(comm, watch, trainer_options(config, run_dir));
  const int64_t seen_before = glove->tokens_seen();
  const int rc = trainer.run();
  report.train_s = since(t_train);
  report.updates = glove->tokens_seen() - seen_before;
  if (rc != 0) return rc;   // stopped by a signal: the checkpoint is written; resume later

  report.rss_gb.assign(static_cast<size_t>(comm.size()), 0.0);
  double mine = peak_rss_gb();
  comm.allgather(Tensor::of(&mine, 1), Tensor::of(report.rss_gb.data(), comm.size()));
  if (comm.rank() == 0) {
    auto t_export = Clock::now();
    EmbeddingTable table = table_of(*glove);
    std::vector<std::string> files = export_vectors(config, run_dir, table);
    report.export_s = since(t_export);
    report.total_s = since(t_start);
    evaluate_and_report(config, run_dir, table, questions, watch, files, report, comm.size(), options.threads);
    report.total_s = since(t_start);
    log_summary(report, watch, comm.size(), options.threads);
    log::info("glove", "evaluation written to " + run_dir + "/eval.json");
  }
  comm.barrier();   // rank 0's export/evaluation failure still reaches every rank (abort)
  return 0;
}

int run_vocab_command(Session& session) {
  CorpusPlan corpus = prepare_corpus(session.comm(), session.config(), session.run_dir());
  StageTimes times;
  Vocab vocab = vocab_stage(session.comm(), session.config(), corpus, session.run_dir(), session.env().threads, &times);
  log::info("vocab", std::to_string(vocab.size()) + " words in " + session.run_dir() + "/vocab.txt (" +
                         fixed(times.vocab_s, 2) + " s)");
  return 0;
}

int run_cooccur_command(Session& session, const std::string& export_bin) {
  MpiCommunicator& comm = session.comm();
  CorpusPlan corpus = prepare_corpus(comm, session.config(), session.run_dir());
  StageTimes times;
  const int threads = session.env().threads;
  Vocab vocab = vocab_stage(comm, session.config(), corpus, session.run_dir(), threads, &times);
  CooccurResult result = cooccur_stage(comm, session.config(), corpus, vocab, session.run_dir(), threads, &times);
  if (!export_bin.empty()) {
    export_glove_cooccurrence(comm, result, export_bin);
    log::info("cooccur", "wrote " + export_bin + " (GloVe's cooccurrence.bin: int32 word1, int32 word2, float64, 1-based)");
  }
  log::info("cooccur", std::to_string(result.stats.nnz) + " non-zeros in " + std::to_string(comm.size()) +
                           " partition(s) in " + session.run_dir() + " (vocab " + fixed(times.vocab_s, 2) +
                           " s, cooccur " + fixed(times.cooccur_s, 2) + " s)");
  return 0;
}

}  // namespace loom
