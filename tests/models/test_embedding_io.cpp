// Word vector files (io/export.h) and their evaluation (models/embedding_eval.h): round
// trips of the three formats, gensim reading ours, analogy and similarity on hand-made
// data with known answers.
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <random>
#include <cstring>
#include <fstream>

#include "core/error.h"
#include "io/export.h"
#include "models/embedding_eval.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

EmbeddingTable sample_table() {
  EmbeddingTable t;
  t.words = {"the", "Paris", "naïve", "x1", "émile"};
  t.dim = 3;
  t.vectors = {0.1f, -2.5e-7f, 3.14159265f, 1.0f / 3.0f, 1e30f, -0.0f, 7.f, 8.f, 9.f,
               -1.f, 0.5f, 0.25f, 123456.789f, -1e-38f, 2.f};
  return t;
}

void expect_bit_equal(const EmbeddingTable& a, const EmbeddingTable& b) {
  ASSERT_EQ(a.words, b.words);
  ASSERT_EQ(a.dim, b.dim);
  ASSERT_EQ(a.vectors.size(), b.vectors.size());
  for (size_t i = 0; i < a.vectors.size(); ++i)
    EXPECT_EQ(std::memcmp(&a.vectors[i], &b.vectors[i], 4), 0)
        << "index " << i << ": expected " << a.vectors[i] << ", got " << b.vectors[i];
}

TEST(Export, RoundTripEveryFormat) {
  test::TempDir dir;
  const EmbeddingTable t = sample_table();
  for (VectorFormat f : {VectorFormat::kGloveText, VectorFormat::kWord2VecText, VectorFormat::kWord2VecBinary}) {
    const std::string path = dir.file(std::string("v.") + vector_format_name(f));
    write_vectors(path, f, t);
    VectorFormat detected{};
    EmbeddingTable back = read_vectors(path, &detected);
    EXPECT_EQ(detected, f) << vector_format_name(f);
    expect_bit_equal(t, back);
    struct stat st;
    EXPECT_NE(::stat((path + ".tmp").c_str(), &st), 0) << "tmp file left behind";
  }
}

TEST(Export, Word2VecBinaryLayout) {
  test::TempDir dir;
  EmbeddingTable t;
  t.words = {"ab"};
  t.dim = 2;
  t.vectors = {1.0f, -2.0f};
  write_vectors(dir.file("v.bin"), VectorFormat::kWord2VecBinary, t);
  const std::string bytes = test::read_file(dir.file("v.bin"));
  const std::string expect = std::string("1 2\nab ") + std::string("\x00\x00\x80\x3f\x00\x00\x00\xc0", 8) + "\n";
  EXPECT_EQ(bytes, expect);
}

TEST(Export, ErrorsNameFileAndLine) {
  test::TempDir dir;
  test::write_file(dir.file("bad.txt"), "a 1 2\nb 3 x\n");
  try {
    read_vectors(dir.file("bad.txt"));
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("bad.txt:2"), std::string::npos) << e.what();
  }
  test::write_file(dir.file("short.txt"), "3 2\na 1 2\nb 3 4\n");
  EXPECT_THROW(read_vectors(dir.file("short.txt")), DataError);
  EmbeddingTable t;
  t.words = {"has space"};
  t.dim = 1;
  t.vectors = {1.f};
  EXPECT_THROW(write_vectors(dir.file("w.txt"), VectorFormat::kGloveText, t), DataError);
}

TEST(Export, GensimReadsWord2VecFiles) {
  struct stat st;
  if (::stat("/usr/bin/python3", &st) != 0) LOOM_SKIP_OR_FAIL("/usr/bin/python3 not found");
  test::RunResult probe = test::run({"/usr/bin/python3", "-c", "import gensim"}, std::chrono::seconds(60));
  if (probe.status != 0) LOOM_SKIP_OR_FAIL("gensim missing: apt-get install python3-gensim");
  test::TempDir dir;
  const EmbeddingTable t = sample_table();
  write_vectors(dir.file("v.txt"), VectorFormat::kWord2VecText, t);
  write_vectors(dir.file("v.bin"), VectorFormat::kWord2VecBinary, t);
  const std::string script =
      "import sys\n"
      "from gensim.models import KeyedVectors\n"
      "for path, binary in ((sys.argv[1], False), (sys.argv[2], True)):\n"
      "    kv = KeyedVectors.load_word2vec_format(path, binary=binary)\n"
      "    assert list(kv.index_to_key) == ['the', 'Paris', 'na\\u00efve', 'x1', '\\u00e9mile'], kv.index_to_key\n"
      "    v = kv['x1']\n"
      "    assert v.dtype.name == 'float32' and list(v) == [-1.0, 0.5, 0.25], v\n"
      "    assert float(kv['Paris'][1]) == 1e30 or abs(float(kv['Paris'][1]) - 1e30) < 1e24\n"
      "print('ok')\n";
  test::write_file(dir.file("check.py"), script);
  test::RunResult r = test::run({"/usr/bin/python3", dir.file("check.py"), dir.file("v.txt"), dir.file("v.bin")},
                                std::chrono::seconds(120));
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("ok"), std::string::npos) << r.out << r.err;
}

// Vectors built so that every answer is known: word i = e_{group} + 0.1 e_{role}.
EmbeddingTable analogy_table() {
  EmbeddingTable t;
  t.dim = 4;
  auto add = [&](const char* w, float a, float b, float c, float d) {
    t.words.push_back(w);
    t.vectors.insert(t.vectors.end(), {a, b, c, d});
  };
  add("King", 1, 0, 1, 0);     // 0
  add("queen", 1, 0, 0, 1);    // 1
  add("man", 0, 1, 1, 0);      // 2
  add("woman", 0, 1, 0, 1);    // 3
  add("boy", 0.9f, 0.9f, 1, 0);   // 4: rare; outside a limit of 4
  add("girl", 0.9f, 0.9f, 0, 1);  // 5
  return t;
}

TEST(EmbeddingEval, AnalogyKnownAnswersAndSkips) {
  test::TempDir dir;
  test::write_file(dir.file("q.txt"),
                   ": family\n"
                   "king queen man woman\n"      // correct (case folded: King)
                   "man woman KING QUEEN\n"      // correct
                   "queen king woman man\n"      // correct
                   "king queen man unicorn\n"    // skipped: unknown word
                   ": gram-gender\n"
                   "king queen boy girl\n"       // answered only without the limit
                   "king man queen queen\n");    // wrong: queen is a query word, excluded
  const EmbeddingTable t = analogy_table();
  AnalogyResult all = evaluate_analogy(t, dir.file("q.txt"));
  ASSERT_EQ(all.sections.size(), 2u);
  EXPECT_EQ(all.sections[0].name, "family");
  EXPECT_TRUE(all.sections[0].semantic);
  EXPECT_FALSE(all.sections[1].semantic);
  EXPECT_EQ(all.sections[0].count.correct, 3);
  EXPECT_EQ(all.sections[0].count.answered, 3);
  EXPECT_EQ(all.sections[0].count.total, 4);
  EXPECT_EQ(all.syntactic.answered, 2);
  EXPECT_EQ(all.syntactic.correct, 1);
  EXPECT_EQ(all.all.correct, 4);
  EXPECT_EQ(all.skipped(), 1);

  AnalogyOptions limited;
  limited.restrict_vocab = 4;   // boy, girl out of the candidates
  limited.batch = 2;            // several sgemm batches
  AnalogyResult top = evaluate_analogy(t, dir.file("q.txt"), limited);
  EXPECT_EQ(top.all.answered, 4);
  EXPECT_EQ(top.all.correct, 3);
  EXPECT_EQ(top.skipped(), 2);
  EXPECT_EQ(top.syntactic.total, 2);
  EXPECT_NE(format_analogy(top).find("total"), std::string::npos);

  AnalogyOptions exact;
  exact.case_fold = false;
  // Every question names "king" in some case and the table holds "King": none answered.
  EXPECT_EQ(evaluate_analogy(t, dir.file("q.txt"), exact).all.answered, 0);
}

TEST(EmbeddingEval, AnalogyErrorNamesLine) {
  test::TempDir dir;
  test::write_file(dir.file("q.txt"), ": s\na b c d\na b c\n");
  try {
    evaluate_analogy(analogy_table(), dir.file("q.txt"));
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("q.txt:3"), std::string::npos) << e.what();
  }
}

TEST(EmbeddingEval, SpearmanWithTies) {
  // x ranks (ties averaged): 1, 2.5, 2.5, 4, 5; y ranks: 2, 1, 3, 5, 4.
  // Deviations from the mean rank 3: (-2, -.5, -.5, 1, 2) and (-1, -2, 0, 2, 1);
  // sum of products 7, sums of squares 9.5 and 10: rho = 7 / sqrt(95) = 0.718184...
  const std::vector<double> x{1, 2, 2, 3, 4}, y{20, 10, 30, 50, 40};
  EXPECT_NEAR(spearman_rho(x, y), 7.0 / std::sqrt(95.0), 1e-12);
  EXPECT_NEAR(spearman_rho(y, y), 1.0, 1e-12);
  EXPECT_TRUE(std::isnan(spearman_rho(std::vector<double>{1}, std::vector<double>{2})));
}

TEST(EmbeddingEval, SimilarityFileAndNeighbors) {
  test::TempDir dir;
  test::write_file(dir.file("ws.tsv"),
                   "# comment\nWord 1\tWord 2\tHuman (mean)\n"
                   "king\tqueen\t8.5\nking\tman\t6\nman\twoman\t8\nking\tunicorn\t1\nboy\tqueen\t2\n");
  const EmbeddingTable t = analogy_table();
  SimilarityResult r = evaluate_similarity(t, dir.file("ws.tsv"));
  EXPECT_EQ(r.pairs, 5);
  EXPECT_EQ(r.used, 4);
  EXPECT_EQ(r.skipped, 1);
  // cosines: king-queen 0.5, king-man 0.5, man-woman 0.5, boy-queen 0.9/sqrt(2.62)/sqrt(2)
  // = 0.393; human 8.5, 6, 8, 2 -> ranks (4, 2, 3, 1) vs cosine ranks (3, 3, 3, 1).
  const std::vector<double> h{8.5, 6, 8, 2}, m{0.5, 0.5, 0.5, 0.39};
  EXPECT_NEAR(r.spearman, spearman_rho(h, m), 1e-12);
  EXPECT_NEAR(r.spearman, 0.7745966692414834, 1e-9);   // 3 / sqrt(5 * 3)

  std::vector<Neighbor> n = nearest_neighbors(t, "king", 2);
  ASSERT_EQ(n.size(), 2u);
  EXPECT_EQ(n[0].word, "boy");
  std::vector<Neighbor> a = analogy_topk(t, "man", "woman", "king", 1);
  ASSERT_EQ(a.size(), 1u);
  EXPECT_EQ(a[0].word, "queen");
  EXPECT_THROW(nearest_neighbors(t, "unicorn", 3), DataError);
}

// Note [Similarity coverage]: 2 usable pairs of 5 (and of fewer than 30) give a rho of
// exactly 1 that means nothing; the result says so, and a file the vectors cover does not.
TEST(EmbeddingEval, SimilarityOverTooFewPairsSaysSo) {
  test::TempDir dir;
  test::write_file(dir.file("few.tsv"), "king\tqueen\t8\nman\tboy\t1\nx\ty\t3\nu\tv\t4\np\tq\t5\n");
  const EmbeddingTable t = analogy_table();
  const SimilarityResult few = evaluate_similarity(t, dir.file("few.tsv"));
  EXPECT_EQ(few.used, 2);
  EXPECT_EQ(few.pairs, 5);
  EXPECT_TRUE(few.coverage_too_low());
  // 40 pairs, all known: enough pairs and all of the file.
  std::string many;
  const char* w[] = {"king", "queen", "man", "woman", "boy", "girl"};
  int n = 0;
  for (int a = 0; a < 6; ++a)
    for (int b = 0; b < 6 && n < 40; ++b, ++n) many += std::string(w[a]) + "\t" + w[b] + "\t" + std::to_string(n % 7) + "\n";
  for (int k = 0; k < 10; ++k) many += std::string(w[k % 6]) + "\t" + w[(k + 1) % 6] + "\t1\n";
  test::write_file(dir.file("many.tsv"), many);
  const SimilarityResult ok = evaluate_similarity(t, dir.file("many.tsv"));
  EXPECT_GE(ok.used, kMinSimilarityPairs);
  EXPECT_FALSE(ok.coverage_too_low());
  // 30 known pairs and 31 unknown ones: enough pairs, but less than half of the file.
  std::string half;
  for (int k = 0; k < 30; ++k) half += std::string(w[k % 6]) + "\t" + w[(k + 2) % 6] + "\t" + std::to_string(k % 5) + "\n";
  for (int k = 0; k < 31; ++k) half += "nope" + std::to_string(k) + "\tking\t1\n";
  test::write_file(dir.file("half.tsv"), half);
  const SimilarityResult h = evaluate_similarity(t, dir.file("half.tsv"));
  EXPECT_EQ(h.used, 30);
  EXPECT_TRUE(h.coverage_too_low());
}

// A section whose questions all have a word outside the candidates shows "--" and says
// that nothing was answered, instead of "0.00 %", which reads as "all wrong".
TEST(EmbeddingEval, SectionsWithNoAnsweredQuestionAreMarked) {
  test::TempDir dir;
  test::write_file(dir.file("q.txt"),
                   ": family\nking queen man woman\n"
                   ": capital-world\nparis france rome italy\nberlin germany oslo norway\n");
  const AnalogyResult r = evaluate_analogy(analogy_table(), dir.file("q.txt"));
  ASSERT_EQ(r.sections.size(), 2u);
  EXPECT_EQ(r.sections[1].count.answered, 0);
  const std::string report = format_analogy(r);
  EXPECT_NE(report.find("capital-world                    --    (no question answered of 2: each has a word "
                        "outside the candidates)"),
            std::string::npos)
      << report;
  EXPECT_NE(report.find("syntactic                        --    (no question answered of 0: none in the file)"),
            std::string::npos)
      << report;
  EXPECT_NE(report.find("family                       100.00 %"), std::string::npos) << report;
}

// Not a check: the speed of the analogy evaluation at the benchmark's size (19,544
// questions, 30k candidates, D 100). Runs with LOOM_EVAL_MEASURE=path/to/questions-words.txt.
TEST(EmbeddingEval, MeasureAnalogySpeed) {
  const char* questions = std::getenv("LOOM_EVAL_MEASURE");
  if (questions == nullptr) GTEST_SKIP() << "set LOOM_EVAL_MEASURE=questions-words.txt to measure";
  EmbeddingTable t;
  t.dim = 100;
  std::ifstream in(questions);
  std::string word;
  while (in >> word)
    if (word != ":") t.words.push_back(fold_case(word));
  std::sort(t.words.begin(), t.words.end());
  t.words.erase(std::unique(t.words.begin(), t.words.end()), t.words.end());
  for (int i = 0; t.size() < 30000; ++i) t.words.push_back(std::to_string(i).insert(0, 1, 'f'));
  std::mt19937 gen(1);
  std::normal_distribution<float> normal;
  t.vectors.resize(static_cast<size_t>(t.size() * t.dim));
  for (float& v : t.vectors) v = normal(gen);
  const auto start = std::chrono::steady_clock::now();
  AnalogyResult r = evaluate_analogy(t, questions);
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("analogy: %lld questions answered over %lld candidates in %.2f s\n",
              static_cast<long long>(r.all.answered), static_cast<long long>(t.size()), s);
}

}  // namespace
}  // namespace loom
