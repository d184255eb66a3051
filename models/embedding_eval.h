#pragma once
// Evaluation and use of word vectors (GloVe, word2vec; any vectors file io/export reads).
//
// Analogy (word2vec's compute-accuracy convention, DESIGN and issue #6): questions-words
// format, ": section" lines then "a b c d" lines. The answer is argmax over candidates x of
// cos(x, b - a + c) with unit vectors (3CosAdd), the three query words excluded. The
// candidates are the `restrict_vocab` first rows of the table (vocabulary order =
// frequency order); a question using a word outside them is skipped and counted. Words
// are case-folded (simple Unicode lower-casing of io/utf8.h) on both sides; when two table
// words fold to the same, the earlier (more frequent) one is used. Sections whose name
// does not start with "gram" are semantic, the others syntactic.
//
// Similarity: WordSim-353-style pairs "w1<TAB>w2<TAB>score" ('#' comments and one header
// row skipped); Spearman's rho between the scores and the cosines over the pairs whose
// words are both in the table (the others are skipped and counted).
//
// Scoring uses OpenBLAS: analogy questions go in batches through one sgemm each, so the
// 19,544 questions over 30k x 100 take seconds.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/export.h"

namespace loom {

struct AnalogyOptions {
  int64_t restrict_vocab = 30000;   // candidates: this many most frequent words; 0 = all
  bool case_fold = true;
  int64_t batch = 256;              // questions per sgemm (scores: batch x 30k floats)
};

struct AnalogyCount {
  int64_t correct = 0;
  int64_t answered = 0;   // all four words among the candidates
  int64_t total = 0;      // questions in the file (answered + skipped)
  // 0 when nothing was answered: check answered (the report and eval.json show "--" / null).
  double accuracy() const { return answered > 0 ? static_cast<double>(correct) / static_cast<double>(answered) : 0.0; }
};

struct AnalogySection {
  std::string name;
  bool semantic = true;
  AnalogyCount count;
};

struct AnalogyResult {
  std::vector<AnalogySection> sections;   // in file order
  AnalogyCount semantic, syntactic, all;
  int64_t skipped() const { return all.total - all.answered; }
};

// DataError naming path:line for a malformed line; IoError if unreadable.
AnalogyResult evaluate_analogy(const EmbeddingTable& table, const std::string& questions_path,
                               const AnalogyOptions& options = {});
// The report `loom eval analogy` prints: one line per section, then semantic / syntactic /
// total with answered counts. A line with no answered question shows "--" and says so
// instead of a 0.00 % that would read as "all wrong".
std::string format_analogy(const AnalogyResult& result);

// Note [Similarity coverage]
// A Spearman rho over the few pairs whose words the vectors know says nothing about the
// vectors: over 2 pairs it is +1 or -1 whatever they hold, and its 95 % interval is still
// about +-0.35 wide at 30 pairs (standard error ~ 1/sqrt(n - 3)); and when most pairs are
// skipped, those left are the pairs of the most common words, not a sample of the file.
// So a result over fewer than kMinSimilarityPairs pairs, or over less than
// kMinSimilarityCoverage of the file's pairs, is reported as too low a coverage to mean
// anything (the figure is still printed, marked; eval.json: "coverage_too_low": true).
// Vectors of a real vocabulary cover WordSim-353 almost whole (loom's wiki17m runs: 352 of
// 353), so the rule flags only vectors trained on another vocabulary or a toy corpus.
inline constexpr int64_t kMinSimilarityPairs = 30;
inline constexpr double kMinSimilarityCoverage = 0.5;

struct SimilarityResult {
  double spearman = 0;    // NaN when fewer than 2 pairs were used
  int64_t pairs = 0;      // pairs in the file
  int64_t used = 0;
  int64_t skipped = 0;    // a word not in the table
  // Note [Similarity coverage].
  bool coverage_too_low() const {
    return used < kMinSimilarityPairs || static_cast<double>(used) < kMinSimilarityCoverage * static_cast<double>(pairs);
  }
};

SimilarityResult evaluate_similarity(const EmbeddingTable& table, const std::string& pairs_path,
                                     bool case_fold = true);
// Spearman's rho of x and y (same length): Pearson's r of their ranks, tied values
// getting the average of their ranks. NaN for fewer than 2 values or a constant input.
double spearman_rho(std::span<const double> x, std::span<const double> y);

struct Neighbor {
  std::string word;
  float cosine = 0;
};

// The k nearest words to `word` by cosine (itself excluded), over the whole table.
// DataError if the word is not in the table.
std::vector<Neighbor> nearest_neighbors(const EmbeddingTable& table, std::string_view word, int k,
                                        bool case_fold = true);
// a : b :: c : ?, top k by 3CosAdd over the first restrict_vocab rows (0 = all),
// a, b and c excluded. DataError naming the unknown word.
std::vector<Neighbor> analogy_topk(const EmbeddingTable& table, std::string_view a, std::string_view b,
                                   std::string_view c, int k, int64_t restrict_vocab = 0,
                                   bool case_fold = true);

// Lower-cased copy (simple Unicode folding; invalid UTF-8 is returned unchanged).
std::string fold_case(std::string_view word);

}  // namespace loom
