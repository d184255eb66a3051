// EmbeddingRecipe; see embedding_recipe.h.
#include "launch/pipeline/embedding_recipe.h"

#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "core/log.h"
#include "core/measure.h"
#include "core/param_store.h"
#include "io/checkpoint.h"
#include "launch/config/config.h"
#include "launch/pipeline/pipeline_eval.h"
#include "launch/pipeline/run_report.h"
#include "dist/mpi_communicator.h"
#include "launch/run/session.h"
#include "models/embedding_eval.h"

namespace loom {
namespace {

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

// ", analogies 41.20 % (semantic 50.1 %, syntactic 33.0 %; 812 correct of 1971 answered)"
std::string analogy_note(const AnalogyResult& r) {
  return ", analogies " + fixed(100.0 * r.all.accuracy(), 2) + " % (semantic " + fixed(100.0 * r.semantic.accuracy(), 1) +
         " %, syntactic " + fixed(100.0 * r.syntactic.accuracy(), 1) + " %; " + std::to_string(r.all.correct) +
         " correct of " + std::to_string(r.all.answered) + " answered)";
}

}  // namespace

std::string vector_file_name(const std::string& name, VectorFormat format) {
  switch (format) {
    case VectorFormat::kGloveText: return name + ".txt";
    case VectorFormat::kWord2VecText: return name + ".w2v.txt";
    case VectorFormat::kWord2VecBinary: return name + ".bin";
  }
  return name;
}

EmbeddingTable embedding_table(const Vocab& vocab, std::vector<float> vectors, int64_t dim) {
  EmbeddingTable t;
  t.words = vocab.tokens();
  t.vectors = std::move(vectors);
  t.dim = dim;
  return t;
}

EmbeddingCheckpoint read_embedding_checkpoint(const CheckpointReader& reader, const std::string& path,
                                              const std::vector<std::string>& names) {
  const std::string& first = names.front();
  std::vector<int64_t> shape;
  for (const DatasetInfo& d : reader.list_datasets())
    if (d.path == "/model/" + first) shape = d.shape;
  LOOM_CHECK(shape.size() == 2 && reader.has_vocab(), DataError, path + " has no /model/" + first + " (V, D) or no /vocab");
  EmbeddingCheckpoint ck;
  ck.V = shape[0];
  ck.D = shape[1];
  ck.params = std::make_unique<ParamStore>();
  for (const std::string& name : names) ck.params->declare(name, {ck.V, ck.D});
  ck.params->finalize();
  reader.read_model_into(*ck.params);
  reader.read_vocab(&ck.tokens, &ck.counts);
  LOOM_CHECK(static_cast<int64_t>(ck.tokens.size()) == ck.V, DataError,
             path + ": /vocab has " + std::to_string(ck.tokens.size()) + " tokens but /model/" + first + " " +
                 std::to_string(ck.V) + " rows");
  return ck;
}

void export_embedding_checkpoint(const CheckpointReader& reader, const ExportRequest& request,
                                 const EmbeddingExport& what,
                                 std::vector<float> (*vectors)(const ParamStore& params, int64_t V, int64_t D,
                                                               const std::string& variant, int64_t* dim)) {
  const VectorFormat format = parse_vector_format(request.format);
  const std::string& path = request.path;
  const EmbeddingCheckpoint ck = read_embedding_checkpoint(reader, path, what.names);
  const ParamStore& params = *ck.params;
  const std::vector<std::string>& tokens = ck.tokens;
  const int64_t V = ck.V, D = ck.D;
  int64_t dim = D;
  const std::vector<float> table = vectors(params, V, D, what.variant, &dim);
  write_vectors(request.out, format, tokens, table.data(), dim);
  std::printf("wrote %s: %lld words x %lld (%s, %s) from %s (step %lld)\n", request.out.c_str(),
              static_cast<long long>(V), static_cast<long long>(dim), vector_format_name(format), what.variant.c_str(),
              path.c_str(), static_cast<long long>(reader.meta().step));
}

EmbeddingRecipe::EmbeddingRecipe(const Session& session)
    : config_(session.config()), run_dir_(session.run_dir()), formats_(export_formats(session.config())) {}

void EmbeddingRecipe::prepare_corpus_and_vocab(PipelineContext& ctx, int threads) {
  Communicator& comm = ctx.session.comm();
  corpus_ = prepare_corpus(comm, config_, run_dir_);
  // Checked before any stage runs, so that a typo does not cost a whole run.
  questions_ = config_.eval.analogy.empty() ? corpus_.planted_questions : config_.eval.analogy;
  for (const std::string& path : {questions_, config_.eval.similarity})
    LOOM_CHECK(path.empty() || std::filesystem::is_regular_file(path), IoError,
               "evaluation file " + path + " does not exist (eval.analogy / eval.similarity)");
  StageTime time;
  vocab_ = vocab_stage(comm, config_, corpus_, run_dir_, threads, &time);
  ctx.report.add_stage("vocab", time.seconds, time.reused);
}

Evaluation EmbeddingRecipe::evaluate(const Model& model, bool final) {
  Evaluation out;
  if (!final) {
    if (questions_.empty()) return out;
    AnalogyOptions ao;
    ao.restrict_vocab = config_.eval.restrict;
    AnalogyResult r = evaluate_analogy(table(model), questions_, ao);
    out.note = analogy_note(r);
    out.metrics["analogy"] = r.all.accuracy();
    return out;
  }
  const EmbeddingTable t = table(model);
  nlohmann::json j = nlohmann::json::object();
  if (!questions_.empty()) {
    AnalogyOptions ao;
    ao.restrict_vocab = config_.eval.restrict;
    AnalogyResult r = evaluate_analogy(t, questions_, ao);
    std::printf("analogy questions %s (3CosAdd, candidates: %lld most frequent words)\n%s", questions_.c_str(),
                static_cast<long long>(config_.eval.restrict), format_analogy(r).c_str());
    std::vector<AnalogyExample> ex = analogy_examples(t, questions_, config_.eval.restrict, config_.eval.examples);
    if (!ex.empty()) std::printf("examples:\n%s", format_analogy_examples(ex).c_str());
    j["analogy"] = nlohmann::json::parse(analogy_json(r));
    j["analogy"]["questions_file"] = questions_;
    j["examples"] = nlohmann::json::parse(examples_json(ex));
  }
  if (!config_.eval.similarity.empty()) {
    SimilarityResult s = evaluate_similarity(t, config_.eval.similarity);
    std::printf("word similarity %s: %s", config_.eval.similarity.c_str(), format_similarity(s).c_str());
    j["similarity"] = nlohmann::json::parse(similarity_json(s));
    j["similarity"]["pairs_file"] = config_.eval.similarity;
  }
  std::fflush(stdout);
  out.json = j.dump();
  return out;
}

std::vector<std::string> EmbeddingRecipe::write_exports(const Model& model) {
  std::vector<std::string> files;
  if (formats_.empty()) return files;
  const EmbeddingTable t = table(model);
  for (VectorFormat f : formats_) {
    const std::string path = run_dir_ + "/" + vector_file_name(config_.vectors.name, f);
    write_vectors(path, f, t);
    files.push_back(path);
    log::info("export", std::string("wrote ") + path + " (" + vector_format_name(f) + ", " + std::to_string(t.size()) +
                            " x " + std::to_string(t.dim) + ")");
  }
  return files;
}

}  // namespace loom
