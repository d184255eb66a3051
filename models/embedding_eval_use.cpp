// Similarity (Spearman's rho), nearest neighbours and single analogy queries
// (embedding_eval.h).
#include <cblas.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <numeric>

#include "core/error.h"
#include "models/embedding_eval.h"
#include "models/embedding_eval_index.h"

namespace loom {

namespace {

// Average ranks (1-based) of x, ties sharing the mean of the ranks they span.
std::vector<double> average_ranks(std::span<const double> x) {
  const size_t n = x.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return x[a] < x[b]; });
  std::vector<double> rank(n);
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j + 1 < n && x[order[j + 1]] == x[order[i]]) ++j;
    const double mean = 0.5 * static_cast<double>(i + j) + 1.0;
    for (size_t k = i; k <= j; ++k) rank[order[k]] = mean;
    i = j + 1;
  }
  return rank;
}

// Fields split on tabs when the line has one, else on spaces.
std::vector<std::string> split_pair_line(const std::string& line) {
  const char sep = line.find('\t') != std::string::npos ? '\t' : ' ';
  std::vector<std::string> out;
  size_t i = 0;
  while (i <= line.size()) {
    size_t j = line.find(sep, i);
    if (j == std::string::npos) j = line.size();
    std::string f = line.substr(i, j - i);
    while (!f.empty() && (f.back() == '\r' || f.back() == ' ')) f.pop_back();
    if (!f.empty()) out.push_back(f);
    i = j + 1;
  }
  return out;
}

double cosine(const float* u, const float* v, int64_t D) {
  double dot = 0;
  for (int64_t k = 0; k < D; ++k) dot += static_cast<double>(u[k]) * v[k];
  return dot;   // rows are unit vectors already
}

int64_t find_or_throw(const detail::UnitIndex& index, std::string_view word) {
  const int64_t row = index.find(word);
  LOOM_CHECK(row >= 0, DataError, "'" + std::string(word) + "' is not in the vectors' vocabulary");
  return row;
}

std::vector<Neighbor> to_neighbors(const EmbeddingTable& table, const std::vector<int64_t>& rows,
                                   const std::vector<float>& scores) {
  std::vector<Neighbor> out;
  for (int64_t r : rows) out.push_back({table.words[static_cast<size_t>(r)], scores[static_cast<size_t>(r)]});
  return out;
}

}  // namespace

double spearman_rho(std::span<const double> x, std::span<const double> y) {
  LOOM_ASSERT(x.size() == y.size(), "spearman_rho: inputs of different lengths");
  const size_t n = x.size();
  if (n < 2) return std::numeric_limits<double>::quiet_NaN();
  const std::vector<double> rx = average_ranks(x), ry = average_ranks(y);
  const double mean = 0.5 * static_cast<double>(n + 1);   // mean of ranks 1..n, ties included
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < n; ++i) {
    sxy += (rx[i] - mean) * (ry[i] - mean);
    sxx += (rx[i] - mean) * (rx[i] - mean);
    syy += (ry[i] - mean) * (ry[i] - mean);
  }
  if (sxx == 0 || syy == 0) return std::numeric_limits<double>::quiet_NaN();
  return sxy / std::sqrt(sxx * syy);
}

SimilarityResult evaluate_similarity(const EmbeddingTable& table, const std::string& pairs_path,
                                     bool case_fold) {
  const detail::UnitIndex index(table, 0, case_fold);
  std::ifstream in(pairs_path);
  LOOM_CHECK(in.good(), IoError, pairs_path + ": cannot open: " + std::strerror(errno));
  SimilarityResult result;
  std::vector<double> human, model;
  std::string line;
  bool first_data = true;
  for (int64_t line_no = 1; std::getline(in, line); ++line_no) {
    if (line.empty() || line[0] == '#' || line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::vector<std::string> f = split_pair_line(line);
    double score = 0;
    const bool numeric = f.size() >= 3 &&
        std::from_chars(f[2].data(), f[2].data() + f[2].size(), score).ec == std::errc();
    const bool header = first_data && !numeric;
    first_data = false;
    if (header) continue;
    LOOM_CHECK(numeric, DataError, pairs_path + ":" + std::to_string(line_no) +
                                       ": expected 'word1<TAB>word2<TAB>score'");
    ++result.pairs;
    const int64_t a = index.find(f[0]), b = index.find(f[1]);
    if (a < 0 || b < 0) { ++result.skipped; continue; }
    human.push_back(score);
    model.push_back(cosine(index.row(a), index.row(b), index.dim()));
  }
  result.used = static_cast<int64_t>(human.size());
  result.spearman = spearman_rho(human, model);
  return result;
}

std::vector<Neighbor> nearest_neighbors(const EmbeddingTable& table, std::string_view word, int k,
                                        bool case_fold) {
  const detail::UnitIndex index(table, 0, case_fold);
  const int64_t row = find_or_throw(index, word);
  std::vector<float> scores(static_cast<size_t>(index.rows()));   // (N,)
  cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(index.rows()), static_cast<int>(index.dim()),
              1.0f, index.unit(), static_cast<int>(index.dim()), index.row(row), 1, 0.0f, scores.data(), 1);
  return to_neighbors(table, detail::top_k(scores.data(), index.rows(), k, {row}), scores);
}

std::vector<Neighbor> analogy_topk(const EmbeddingTable& table, std::string_view a, std::string_view b,
                                   std::string_view c, int k, int64_t restrict_vocab, bool case_fold) {
  const detail::UnitIndex index(table, restrict_vocab, case_fold);
  const int64_t ra = find_or_throw(index, a), rb = find_or_throw(index, b), rc = find_or_throw(index, c);
  const int64_t D = index.dim();
  std::vector<float> query(static_cast<size_t>(D));                // (D,) b - a + c
  for (int64_t j = 0; j < D; ++j) query[static_cast<size_t>(j)] = index.row(rb)[j] - index.row(ra)[j] + index.row(rc)[j];
  std::vector<float> scores(static_cast<size_t>(index.rows()));   // (M,)
  cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<int>(index.rows()), static_cast<int>(D), 1.0f,
              index.unit(), static_cast<int>(D), query.data(), 1, 0.0f, scores.data(), 1);
  // Report cosines, not raw dot products: divide by |query|.
  double norm = 0;
  for (float q : query) norm += static_cast<double>(q) * q;
  const float inv = norm > 0 ? static_cast<float>(1.0 / std::sqrt(norm)) : 0.0f;
  for (float& s : scores) s *= inv;
  return to_neighbors(table, detail::top_k(scores.data(), index.rows(), k, {ra, rb, rc}), scores);
}

}  // namespace loom
