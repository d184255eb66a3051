// Evaluation reports (pipeline_eval.h).
#include "launch/pipeline/pipeline_eval.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>
#include <unordered_set>

#include "core/error.h"

namespace loom {
namespace {

nlohmann::json count_json(const AnalogyCount& c) {
  // No answered question: no accuracy (null), not 0 (models/embedding_eval.h).
  return {{"correct", c.correct}, {"answered", c.answered}, {"questions", c.total},
          {"accuracy", c.answered > 0 ? nlohmann::json(c.accuracy()) : nlohmann::json(nullptr)}};
}

}  // namespace

std::vector<AnalogyExample> analogy_examples(const EmbeddingTable& table, const std::string& questions_path,
                                             int64_t restrict_vocab, int64_t limit) {
  std::vector<AnalogyExample> out;
  if (limit <= 0) return out;
  std::ifstream in(questions_path);
  if (!in) throw IoError("cannot open analogy questions " + questions_path + ": " + std::strerror(errno));
  const int64_t rows = restrict_vocab > 0 ? std::min(restrict_vocab, table.size()) : table.size();
  std::unordered_set<std::string> candidates;   // folded words of the first `rows` rows
  for (int64_t i = 0; i < rows; ++i) candidates.insert(fold_case(table.words[static_cast<size_t>(i)]));
  std::string line;
  bool section_done = true;   // before the first section header, nothing to take
  while (std::getline(in, line) && static_cast<int64_t>(out.size()) < limit) {
    if (!line.empty() && line[0] == ':') {
      section_done = false;
      continue;
    }
    if (section_done) continue;
    std::istringstream words(line);
    std::string w[4];
    if (!(words >> w[0] >> w[1] >> w[2] >> w[3])) continue;
    bool known = true;
    for (std::string& x : w) {
      x = fold_case(x);
      known = known && candidates.count(x) > 0;
    }
    if (!known) continue;
    std::vector<Neighbor> best = analogy_topk(table, w[0], w[1], w[2], 1, restrict_vocab);
    if (best.empty()) continue;
    out.push_back({w[0], w[1], w[2], w[3], fold_case(best[0].word), best[0].cosine});
    section_done = true;
  }
  return out;
}

std::string format_analogy_examples(const std::vector<AnalogyExample>& examples) {
  std::string out;
  char line[512];
  for (const AnalogyExample& e : examples) {
    std::snprintf(line, sizeof line, "  %s : %s :: %s : ?  ->  %s (cos %.3f)  %s\n", e.a.c_str(), e.b.c_str(),
                  e.c.c_str(), e.answer.c_str(), static_cast<double>(e.cosine),
                  e.correct() ? "ok" : ("(expected " + e.expected + ")").c_str());
    out += line;
  }
  return out;
}

std::string format_similarity(const SimilarityResult& r) {
  char line[256];
  std::snprintf(line, sizeof line, "Spearman rho %.4f over %lld of %lld pairs (%lld skipped: a word not in the vectors)\n",
                r.spearman, static_cast<long long>(r.used), static_cast<long long>(r.pairs),
                static_cast<long long>(r.skipped));
  std::string out = line;
  if (r.coverage_too_low()) {   // Note [Similarity coverage] in models/embedding_eval.h
    std::snprintf(line, sizeof line,
                  "coverage too low to mean anything: %lld of %lld pairs (a rho needs at least %lld pairs and "
                  "%.0f %% of the file's); the vectors lack the other pairs' words\n",
                  static_cast<long long>(r.used), static_cast<long long>(r.pairs),
                  static_cast<long long>(kMinSimilarityPairs), 100.0 * kMinSimilarityCoverage);
    out += line;
  }
  return out;
}

std::string analogy_json(const AnalogyResult& r) {
  nlohmann::json sections = nlohmann::json::array();
  for (const AnalogySection& s : r.sections) {
    nlohmann::json j = count_json(s.count);
    j["name"] = s.name;
    j["semantic"] = s.semantic;
    sections.push_back(j);
  }
  nlohmann::json j = {{"sections", sections},
                      {"semantic", count_json(r.semantic)},
                      {"syntactic", count_json(r.syntactic)},
                      {"total", count_json(r.all)},
                      {"skipped", r.skipped()}};
  return j.dump();
}

std::string similarity_json(const SimilarityResult& r) {
  nlohmann::json j = {{"pairs", r.pairs}, {"used", r.used}, {"skipped", r.skipped},
                      {"coverage_too_low", r.coverage_too_low()}};
  j["spearman"] = std::isnan(r.spearman) ? nlohmann::json(nullptr) : nlohmann::json(r.spearman);
  return j.dump();
}

std::string examples_json(const std::vector<AnalogyExample>& examples) {
  nlohmann::json out = nlohmann::json::array();
  for (const AnalogyExample& e : examples)
    out.push_back({{"a", e.a}, {"b", e.b}, {"c", e.c}, {"expected", e.expected}, {"answer", e.answer},
                   {"cosine", e.cosine}, {"correct", e.correct()}});
  return out.dump();
}

}  // namespace loom
