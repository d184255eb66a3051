#pragma once
// EmbeddingRecipe: the part of `loom train` that word-embedding kinds (GloVe, word2vec)
// share - the corpus and vocabulary stages, the analogy / similarity evaluation and the
// vector exports. A kind derives from it, builds its own data stage and model in build(),
// and says how to read its vectors (table()).
//
// Files in the run directory (besides the Trainer's checkpoints/, metrics.jsonl, config.toml):
//   planted.txt, planted-questions.txt    corpus.synthetic only
//   vocab.txt, vocab.h5, vocab.fingerprint
//   <vectors.name>.txt | .w2v.txt | .bin  (vectors.formats: glove | word2vec | word2vec-bin)
//   eval.json
#include <memory>
#include <string>
#include <vector>

#include "io/export.h"
#include "io/vocab.h"
#include "launch/pipeline/model_registry.h"
#include "launch/pipeline/pipeline_data.h"

namespace loom {

struct Config;

// The file name of one export format: NAME.txt, NAME.w2v.txt, NAME.bin.
std::string vector_file_name(const std::string& name, VectorFormat format);

// The table of `vocab`'s words and their vectors ((V, dim) row-major).
EmbeddingTable embedding_table(const Vocab& vocab, std::vector<float> vectors, int64_t dim);

// `loom export` of an embedding checkpoint: the vocabulary and the (V, D) parameters
// `names` (all of one shape), checked against each other; `vectors(params)` makes the
// (V, dim) table to write as request.format. `variant` names what was exported in the line
// it prints.
struct EmbeddingExport {
  std::vector<std::string> names;   // e.g. {"W", "W_ctx"} or {"syn0"}
  std::string variant;              // e.g. "sum" or "syn0"
};
class ParamStore;
// The (V, D) tables `names` of an embedding checkpoint and its vocabulary: DataError naming
// the file when the first table or /vocab is missing or they disagree on V.
struct EmbeddingCheckpoint {
  std::unique_ptr<ParamStore> params;
  std::vector<std::string> tokens;
  std::vector<int64_t> counts;
  int64_t V = 0, D = 0;
};
EmbeddingCheckpoint read_embedding_checkpoint(const CheckpointReader& reader, const std::string& path,
                                              const std::vector<std::string>& names);
void export_embedding_checkpoint(const CheckpointReader& reader, const ExportRequest& request,
                                 const EmbeddingExport& what,
                                 std::vector<float> (*vectors)(const ParamStore& params, int64_t V, int64_t D,
                                                               const std::string& variant, int64_t* dim));

class EmbeddingRecipe : public ModelRecipe {
 public:
  explicit EmbeddingRecipe(const Session& session);

  Evaluation evaluate(const Model& model, bool final) override;
  std::vector<std::string> write_exports(const Model& model) override;

 protected:
  // The vectors to export and evaluate, from the model's current parameters.
  virtual EmbeddingTable table(const Model& model) const = 0;
  // Collective: checks the export formats and evaluation files, then the corpus and the
  // vocabulary stages (recorded in ctx.report). Fills corpus_, vocab_, questions_.
  void prepare_corpus_and_vocab(PipelineContext& ctx, int threads);

  const Config& config_;
  std::string run_dir_;
  CorpusPlan corpus_;
  Vocab vocab_;
  std::string questions_;   // analogy questions: eval.analogy, else the planted ones, else ""

 private:
  std::vector<VectorFormat> formats_;
};

}  // namespace loom
