// Analogy evaluation (embedding_eval.h) and the unit-vector index shared by the queries.
#include "models/embedding_eval.h"

#include <cblas.h>

#include <algorithm>
#include <cerrno>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>

#include "core/error.h"
#include "io/utf8.h"
#include "models/embedding_eval_index.h"

namespace loom {

std::string fold_case(std::string_view word) {
  std::string out(word);
  if (utf8::first_invalid(out) == out.size()) utf8::lowercase_inplace(out.data(), out.size());
  return out;
}

namespace detail {

UnitIndex::UnitIndex(const EmbeddingTable& table, int64_t rows, bool fold)
    : fold_(fold), rows_(rows <= 0 || rows > table.size() ? table.size() : rows), dim_(table.dim) {
  unit_.resize(static_cast<size_t>(rows_ * dim_));
  for (int64_t i = 0; i < rows_; ++i) {
    const float* v = table.row(i);
    double norm = 0;
    for (int64_t k = 0; k < dim_; ++k) norm += static_cast<double>(v[k]) * v[k];
    const float scale = norm > 0 ? static_cast<float>(1.0 / std::sqrt(norm)) : 0.0f;
    for (int64_t k = 0; k < dim_; ++k) unit_[static_cast<size_t>(i * dim_ + k)] = v[k] * scale;
    index_.emplace(fold_ ? fold_case(table.words[static_cast<size_t>(i)]) : table.words[static_cast<size_t>(i)], i);
  }
}

int64_t UnitIndex::find(std::string_view word) const {
  auto it = index_.find(fold_ ? fold_case(word) : std::string(word));
  return it == index_.end() ? -1 : it->second;
}

std::vector<int64_t> top_k(const float* scores, int64_t n, int k, std::initializer_list<int64_t> exclude) {
  std::vector<int64_t> rows;
  rows.reserve(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    if (std::find(exclude.begin(), exclude.end(), i) == exclude.end()) rows.push_back(i);
  const size_t keep = std::min(rows.size(), static_cast<size_t>(std::max(k, 0)));
  std::partial_sort(rows.begin(), rows.begin() + static_cast<std::ptrdiff_t>(keep), rows.end(),
                    [&](int64_t a, int64_t b) { return scores[a] > scores[b] || (scores[a] == scores[b] && a < b); });
  rows.resize(keep);
  return rows;
}

}  // namespace detail

namespace {

struct Question {
  int64_t a, b, c, d;   // rows in the UnitIndex
  size_t section;
};

std::vector<std::string_view> split_ws(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && std::isspace(static_cast<unsigned char>(line[i]))) ++i;
    size_t j = i;
    while (j < line.size() && !std::isspace(static_cast<unsigned char>(line[j]))) ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

// Parses the file into sections (totals counted) and the answerable questions.
std::vector<Question> read_questions(const std::string& path, const detail::UnitIndex& index,
                                     AnalogyResult* result) {
  std::ifstream in(path);
  LOOM_CHECK(in.good(), IoError, path + ": cannot open: " + std::strerror(errno));
  std::vector<Question> questions;
  std::string line;
  for (int64_t line_no = 1; std::getline(in, line); ++line_no) {
    std::vector<std::string_view> f = split_ws(line);
    if (f.empty()) continue;
    if (f[0] == ":" || f[0].starts_with(":")) {
      std::string name = f[0].size() > 1 ? std::string(f[0].substr(1)) : (f.size() > 1 ? std::string(f[1]) : "");
      result->sections.push_back({name, !name.starts_with("gram"), {}});
      continue;
    }
    LOOM_CHECK(f.size() == 4, DataError, path + ":" + std::to_string(line_no) +
                                             ": expected 4 words 'a b c d' or ': section', found " +
                                             std::to_string(f.size()) + " fields");
    if (result->sections.empty()) result->sections.push_back({"(no section)", true, {}});
    const size_t s = result->sections.size() - 1;
    ++result->sections[s].count.total;
    Question q{index.find(f[0]), index.find(f[1]), index.find(f[2]), index.find(f[3]), s};
    if (q.a >= 0 && q.b >= 0 && q.c >= 0 && q.d >= 0) questions.push_back(q);
  }
  LOOM_CHECK(!in.bad(), IoError, path + ": read failed");
  return questions;
}

// Scores one batch (B questions) with one sgemm and counts the correct answers.
void score_batch(const detail::UnitIndex& index, const Question* q, int64_t B,
                 std::vector<float>& query, std::vector<float>& scores, AnalogyResult* result) {
  const int64_t D = index.dim(), M = index.rows();
  for (int64_t i = 0; i < B; ++i) {
    const float *a = index.row(q[i].a), *b = index.row(q[i].b), *c = index.row(q[i].c);
    float* out = query.data() + i * D;   // (D,) b - a + c
    for (int64_t k = 0; k < D; ++k) out[k] = b[k] - a[k] + c[k];
  }
  // scores (B, M) = query (B, D) x unit^T (D, M)
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(B), static_cast<int>(M),
              static_cast<int>(D), 1.0f, query.data(), static_cast<int>(D), index.unit(),
              static_cast<int>(D), 0.0f, scores.data(), static_cast<int>(M));
  for (int64_t i = 0; i < B; ++i) {
    float* s = scores.data() + i * M;
    s[q[i].a] = s[q[i].b] = s[q[i].c] = -std::numeric_limits<float>::infinity();
    const int64_t best = std::max_element(s, s + M) - s;   // first maximum: most frequent
    AnalogyCount& count = result->sections[q[i].section].count;
    ++count.answered;
    if (best == q[i].d) ++count.correct;
  }
}

void add_count(AnalogyCount* to, const AnalogyCount& from) {
  to->correct += from.correct;
  to->answered += from.answered;
  to->total += from.total;
}

}  // namespace

AnalogyResult evaluate_analogy(const EmbeddingTable& table, const std::string& questions_path,
                               const AnalogyOptions& options) {
  LOOM_CHECK(table.dim > 0 && table.size() > 0, DataError, "analogy: the vector table is empty");
  const detail::UnitIndex index(table, options.restrict_vocab, options.case_fold);
  AnalogyResult result;
  const std::vector<Question> questions = read_questions(questions_path, index, &result);
  const int64_t batch = std::max<int64_t>(1, options.batch);
  std::vector<float> query(static_cast<size_t>(batch * index.dim()));    // (batch, D)
  std::vector<float> scores(static_cast<size_t>(batch * index.rows()));  // (batch, M)
  const int64_t n = static_cast<int64_t>(questions.size());
  for (int64_t begin = 0; begin < n; begin += batch)
    score_batch(index, questions.data() + begin, std::min(batch, n - begin), query, scores, &result);
  for (const AnalogySection& s : result.sections) {
    add_count(s.semantic ? &result.semantic : &result.syntactic, s.count);
    add_count(&result.all, s.count);
  }
  return result;
}

std::string format_analogy(const AnalogyResult& r) {
  std::string out;
  char line[256];
  auto put = [&](const char* name, const AnalogyCount& c) {
    if (c.answered == 0) {
      std::snprintf(line, sizeof(line), "%-28s     --    (no question answered of %lld: %s)\n", name,
                    static_cast<long long>(c.total),
                    c.total > 0 ? "each has a word outside the candidates" : "none in the file");
    } else {
      std::snprintf(line, sizeof(line), "%-28s %6.2f %%  (%lld / %lld answered, %lld questions)\n", name,
                    100.0 * c.accuracy(), static_cast<long long>(c.correct),
                    static_cast<long long>(c.answered), static_cast<long long>(c.total));
    }
    out += line;
  };
  for (const AnalogySection& s : r.sections) put(s.name.c_str(), s.count);
  put("semantic", r.semantic);
  put("syntactic", r.syntactic);
  put("total", r.all);
  std::snprintf(line, sizeof(line), "questions skipped (a word outside the candidates): %lld\n",
                static_cast<long long>(r.skipped()));
  return out + line;
}

}  // namespace loom
