// GloVe in `loom train`: corpus -> vocabulary -> co-occurrence partitions (each reused when
// unchanged, Note [Stage reuse] in launch/pipeline/pipeline_data.h) -> Glove -> vectors.
//
// Files in the run directory, besides EmbeddingRecipe's:
//   cooccur.part-<r>-of-<W>.h5, cooccur.fingerprint
#include "launch/kinds/glove.h"

#include <filesystem>
#include <memory>

#include "core/log.h"
#include "core/measure.h"
#include "dist/mpi_communicator.h"
#include "core/param_store.h"
#include "io/checkpoint.h"
#include "models/glove/cooccur_build.h"
#include "launch/config/config.h"
#include "launch/pipeline/embedding_recipe.h"
#include "launch/pipeline/run_report.h"
#include "launch/run/session.h"

namespace loom {

LOOM_REGISTER_MODEL_SECTION(GloveSection, LOOM_CONFIG_GLOVE, "GloVe training (models/glove)");
LOOM_REGISTER_MODEL_SECTION(CooccurSection, LOOM_CONFIG_COOCCUR, "GloVe's co-occurrence matrix (models/glove/cooccur_build.h)");

namespace {

namespace fs = std::filesystem;

CooccurOptions cooccur_options(const Config& config, int threads, const std::string& run_dir) {
  const CooccurSection& c = config.models.get<CooccurSection>();
  CooccurOptions o;
  o.window = static_cast<int>(c.window);
  o.symmetric = c.symmetric;
  o.memory_gb = c.memory_gb;
  o.spill_dir = c.spill_dir.empty() ? run_dir : c.spill_dir;
  o.seed = static_cast<uint64_t>(config.run.seed);
  o.threads = threads;
  return o;
}

std::string cooccur_fingerprint(const Config& config, const CorpusOptions& corpus, int world) {
  const CooccurSection& c = config.models.get<CooccurSection>();
  return vocab_fingerprint(config, corpus) + "cooccur.window = " + std::to_string(c.window) +
         "\ncooccur.symmetric = " + (c.symmetric ? "true" : "false") + "\nrun.seed = " + std::to_string(config.run.seed) +
         "\nworld_size = " + std::to_string(world) + "\n";
}

std::string partition_path(const std::string& run_dir, int rank, int world) {
  return run_dir + "/cooccur.part-" + std::to_string(rank) + "-of-" + std::to_string(world) + ".h5";
}

// Partitions of other world sizes are stale once this one is computed (Note [Stage reuse]).
void remove_other_partitions(const std::string& run_dir, int world) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(run_dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("cooccur.part-", 0) == 0 && !name.ends_with("-of-" + std::to_string(world) + ".h5"))
      fs::remove(entry.path(), ec);
  }
}

// Collective: this rank's co-occurrence partition, reused or built (Note [Stage reuse]).
CooccurResult cooccur_stage(Communicator& comm, const Config& config, CorpusPlan& corpus, const Vocab& vocab,
                            const std::string& run_dir, int threads, StageTime* time) {
  const auto t0 = SteadyClock::now();
  const int rank = comm.rank(), world = comm.size();
  const std::string fp = run_dir + "/cooccur.fingerprint";
  const std::string now = rank == 0 ? cooccur_fingerprint(config, corpus.options, world) : std::string();
  std::vector<std::string> outputs;
  for (int r = 0; r < world; ++r) outputs.push_back(partition_path(run_dir, r, world));
  CooccurResult result;
  if (agree_on_reuse(comm, fp, now, outputs, "cooccur")) {
    result.entries = read_cooccur_h5(partition_path(run_dir, rank, world));
    result.partition = rank;
    result.num_partitions = world;
    result.h5_path = partition_path(run_dir, rank, world);
    int64_t nnz = static_cast<int64_t>(result.entries.size());
    comm.allreduce(Tensor::of(&nnz, 1), ReduceOp::kSum);
    result.stats.nnz = nnz;
    log::info("cooccur", "reusing " + partition_path(run_dir, 0, world) + " and the other " + std::to_string(world - 1) +
                             " partition(s) (" + std::to_string(nnz) + " non-zeros; corpus, vocabulary, window, " +
                             "seed and world size unchanged since " + fp + ")");
    time->reused = true;
  } else {
    if (rank == 0) remove_other_partitions(run_dir, world);
    const CorpusLayout& layout = layout_of(comm, corpus);
    StageProgress progress(comm.rank(), "cooccur", display_options(config));
    result = build_cooccurrence(comm, vocab, layout, corpus.options, cooccur_options(config, threads, run_dir), run_dir);
    comm.barrier();   // every rank's partition file is in place before the fingerprint commits them
    if (rank == 0) write_text_atomically(fp, now);
  }
  time->seconds = seconds_since(t0);
  return result;
}

class GloveRecipe final : public EmbeddingRecipe {
 public:
  explicit GloveRecipe(const Session& session)
      : EmbeddingRecipe(session), options_(glove_options(session.config(), session.env().threads)),
        run_threads_(session.env().threads) {}

  std::unique_ptr<Model> build(PipelineContext& ctx) override {
    Communicator& comm = ctx.session.comm();
    prepare_corpus_and_vocab(ctx, run_threads_);
    StageTime time;
    CooccurResult cooccur = cooccur_stage(comm, config_, corpus_, vocab_, run_dir_, run_threads_, &time);
    ctx.report.add_stage("cooccur", time.seconds, time.reused);
    ctx.report.set_threads(options_.threads);
    ctx.report.set_items_name("updates");
    std::unique_ptr<Glove> glove = make_glove(options_, comm, vocab_, std::move(cooccur.entries));
    log::info("glove", std::to_string(vocab_.size()) + " words, D " + std::to_string(options_.dim) + ", " +
                           std::to_string(options_.epochs) + " epochs of " + std::to_string(glove->steps_per_epoch()) +
                           " step(s), " + std::to_string(comm.size()) + " rank(s) x " +
                           std::to_string(options_.threads) + " thread(s)" +
                           (options_.threads > 1 ? " (Hogwild: results depend on timing)" : "") + ", sync " +
                           glove_sync_name(options_.sync));
    return glove;
  }

  void gather_report(PipelineContext& /*ctx*/, const Model& /*model*/) override {}

 protected:
  EmbeddingTable table(const Model& model) const override {
    const Glove& glove = static_cast<const Glove&>(model);
    return embedding_table(glove.vocabulary(), glove.output_vectors(), glove.output_dim());
  }

 private:
  GloveOptions options_;
  int run_threads_;
};

// `loom export`: W + W_ctx, W or [W, W_ctx] by --output ("" = the checkpoint's glove.output).
void export_glove_checkpoint(const CheckpointReader& reader, const ExportRequest& request) {
  std::string output = request.output;
  if (output.empty()) {
    try {
      output = load_config_text(reader.meta().config_toml, request.path + " (stored config)", {})
                   .models.get<GloveSection>().output;
    } catch (const ConfigError&) {
      output = "sum";   // a config from another loom version: the default
    }
  }
  export_embedding_checkpoint(reader, request, {{"W", "W_ctx"}, output},
                              [](const ParamStore& p, int64_t V, int64_t D, const std::string& variant, int64_t* dim) {
                                const GloveOutput mode = parse_glove_output(variant);
                                *dim = mode == GloveOutput::kConcat ? 2 * D : D;
                                return glove_output_vectors(p.value(0).f32(), p.value(1).f32(), V, D, mode);
                              });
}

}  // namespace

LOOM_REGISTER_MODEL(glove, GloveRecipe, export_glove_checkpoint,
                    "GloVe: co-occurrence counts, weighted least squares, AdaGrad");

GloveOptions glove_options(const Config& config, int run_threads) {
  const GloveSection& g = config.models.get<GloveSection>();
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

int run_cooccur_command(Session& session, const std::string& export_bin) {
  MpiCommunicator& comm = session.comm();
  CorpusPlan corpus = prepare_corpus(comm, session.config(), session.run_dir());
  const int threads = session.env().threads;
  StageTime vocab_time, cooccur_time;
  Vocab vocab = vocab_stage(comm, session.config(), corpus, session.run_dir(), threads, &vocab_time);
  CooccurResult result = cooccur_stage(comm, session.config(), corpus, vocab, session.run_dir(), threads, &cooccur_time);
  if (!export_bin.empty()) {
    export_glove_cooccurrence(comm, result, export_bin);
    log::info("cooccur", "wrote " + export_bin + " (GloVe's cooccurrence.bin: int32 word1, int32 word2, float64, 1-based)");
  }
  log::info("cooccur", std::to_string(result.stats.nnz) + " non-zeros in " + std::to_string(comm.size()) +
                           " partition(s) in " + session.run_dir() + " (vocab " + fixed(vocab_time.seconds, 2) +
                           " s, cooccur " + fixed(cooccur_time.seconds, 2) + " s)");
  return 0;
}

}  // namespace loom
