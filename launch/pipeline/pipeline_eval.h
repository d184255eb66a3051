#pragma once
// Evaluation reports shared by `loom train` (after and during training) and the `loom eval`,
// `loom analogy`, `loom neighbors` commands: the printed tables and the JSON records of
// RUN_DIR/eval.json. Nothing here is collective; callers run it on one rank.
#include <cstdint>
#include <string>
#include <vector>

#include "io/export.h"
#include "models/embedding_eval.h"

namespace loom {

// One answered example: "a : b :: c : ?" with the expected d and the top answer.
struct AnalogyExample {
  std::string a, b, c, expected, answer;
  float cosine = 0;
  bool correct() const { return answer == expected; }
};

// The first question of each section whose four words are among the first
// `restrict_vocab` rows (0 = all), answered by 3CosAdd; at most `limit` examples.
std::vector<AnalogyExample> analogy_examples(const EmbeddingTable& table, const std::string& questions_path,
                                             int64_t restrict_vocab, int64_t limit);
// "  france : paris :: germany : ?  ->  berlin (cos 0.912)  ok" per example.
std::string format_analogy_examples(const std::vector<AnalogyExample>& examples);
// "WordSim-353-style pairs: Spearman rho 0.4660 over 331 of 353 pairs (22 skipped)".
std::string format_similarity(const SimilarityResult& result);

// JSON text (an object) of each result, for eval.json and `loom eval --json`.
std::string analogy_json(const AnalogyResult& result);
std::string similarity_json(const SimilarityResult& result);
std::string examples_json(const std::vector<AnalogyExample>& examples);

}  // namespace loom
