// word2vec in `loom train`: corpus -> vocabulary (reused when unchanged, Note [Stage reuse]
// in launch/pipeline/pipeline_data.h) -> this rank's shard read as word ids -> Word2Vec ->
// syn0 exported as vectors. Per-rank waiting and synchronisation seconds go to the report.
#include "launch/kinds/word2vec.h"

#include <nlohmann/json.hpp>

#include <memory>

#include "core/error.h"
#include "core/log.h"
#include "core/param_store.h"
#include "core/measure.h"
#include "dist/mpi_communicator.h"
#include "launch/config/config.h"
#include "launch/kinds/word2vec_full.h"
#include "launch/pipeline/embedding_recipe.h"
#include "launch/pipeline/run_report.h"
#include "launch/run/session.h"

namespace loom {

LOOM_REGISTER_MODEL_SECTION(Word2VecSection, LOOM_CONFIG_WORD2VEC, "word2vec training (models/word2vec)");

namespace {

// ", sync delta (rows of the 120 most frequent words averaged), the rows of the ..."
std::string sync_description(const Word2VecOptions& o, const Word2Vec& m, int world) {
  std::string out = ", sync " + std::string(word2vec_sync_name(o.sync));
  if (world <= 1 || o.sync != Word2VecSync::kDelta) return out;
  if (m.hot_words() > 0 || m.hot_nodes() > 0)
    out += " (rows of the " + std::to_string(m.hot_words()) + " most frequent words" +
           (o.hs ? " and " + std::to_string(m.hot_nodes()) + " top inner nodes" : "") + " averaged)";
  if (m.rare_from() < m.vocabulary().size())
    out += ", the rows of the " + std::to_string(m.vocabulary().size() - m.rare_from()) + " rarest words summed every " +
           std::to_string(o.rare_every) + " steps";
  return out;
}

class Word2VecRecipe final : public EmbeddingRecipe {
 public:
  explicit Word2VecRecipe(const Session& session)
      : EmbeddingRecipe(session), options_(word2vec_options(session.config(), session.env().threads)) {}

  std::unique_ptr<Model> build(PipelineContext& ctx) override {
    Communicator& comm = ctx.session.comm();
    prepare_corpus_and_vocab(ctx, options_.threads);
    const auto t_read = SteadyClock::now();
    const CorpusLayout& layout = layout_of(comm, corpus_);
    TokenizedShard shard;
    {
      StageProgress progress(comm.rank(), "read", display_options(ctx.session.config()));
      shard = read_tokenized_shard(layout, corpus_.options, vocab_, comm.rank(), comm.size(), options_.threads,
                                   options_.max_sentence_words);
    }
    ctx.report.add_stage("read", seconds_since(t_read), false);
    ctx.report.set_threads(options_.threads);
    ctx.report.set_items_name("words");
    std::unique_ptr<Word2Vec> model = make_word2vec(options_, comm, vocab_, std::move(shard));
    const Word2VecOptions& o = options_;
    log::info("word2vec", std::string(word2vec_arch_name(o.arch)) + ", " + std::to_string(vocab_.size()) +
                              " words in the vocabulary, " + std::to_string(model->total_words()) +
                              " words per epoch, D " + std::to_string(o.dim) + ", window " + std::to_string(o.window) +
                              ", negative " + std::to_string(o.negative) + (o.hs ? ", hierarchical softmax" : "") +
                              ", sample " + fixed(o.sample, 6) + ", alpha " + fixed(o.initial_alpha(), 4) + ", " +
                              std::to_string(o.epochs) + " epochs of " + std::to_string(model->steps_per_epoch()) +
                              " step(s), " + std::to_string(comm.size()) + " rank(s) x " + std::to_string(o.threads) +
                              " thread(s)" + (o.threads > 1 ? " (Hogwild: results depend on timing)" : "") +
                              sync_description(o, *model, comm.size()));
    return model;
  }

  Evaluation evaluate(const Model& model, bool final) override {
    Evaluation e = EmbeddingRecipe::evaluate(model, final);
    if (final) {
      nlohmann::json j = nlohmann::json::parse(e.json.empty() ? std::string("{}") : e.json);
      j["arch"] = word2vec_arch_name(options_.arch);
      e.json = j.dump();
    }
    return e;
  }

  void gather_report(PipelineContext& ctx, const Model& model) override {
    const Word2Vec& m = static_cast<const Word2Vec&>(model);
    ctx.report.gather_per_rank(ctx.session.comm(), "wait_per_rank", m.wait_seconds(), "waiting for the other ranks");
    ctx.report.gather_per_rank(ctx.session.comm(), "sync_per_rank", m.sync_seconds(), "synchronisation");
  }

 protected:
  EmbeddingTable table(const Model& model) const override {
    const Word2Vec& m = static_cast<const Word2Vec&>(model);
    return embedding_table(m.vocabulary(), m.output_vectors(), m.options().dim);
  }

 private:
  Word2VecOptions options_;
};

// `loom export`: syn0, the vectors its own training run exports (no --output variants).
void export_word2vec_checkpoint(const CheckpointReader& reader, const ExportRequest& request) {
  if (request.format == "word2vec-full") return export_word2vec_full(reader, request);
  LOOM_CHECK(request.output.empty(), ConfigError,
             "--output " + request.output + " applies to GloVe checkpoints; " + request.path +
                 " holds word2vec (exported: syn0)");
  export_embedding_checkpoint(reader, request, {{"syn0"}, "syn0"},
                              [](const ParamStore& p, int64_t V, int64_t D, const std::string&, int64_t* dim) {
                                *dim = D;
                                const float* syn0 = p.value(0).f32();
                                return std::vector<float>(syn0, syn0 + V * D);
                              });
}

}  // namespace

LOOM_REGISTER_MODEL(word2vec, Word2VecRecipe, export_word2vec_checkpoint,
                    "word2vec: skip-gram or CBOW, negative sampling and/or hierarchical softmax");

Word2VecOptions word2vec_options(const Config& config, int run_threads) {
  const Word2VecSection& w = config.models.get<Word2VecSection>();
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
  o.prefetch = w.prefetch;
  o.peer_memory = config.comm.peer_memory;
  o.seed = static_cast<uint64_t>(config.run.seed);
  return o;
}

}  // namespace loom
