// End to end: `loom train examples/word2vec.toml` (skip-gram, negative sampling, on the
// planted-relation corpus that loom generates) alone and under mpirun -np 2 and 3; CBOW
// with hierarchical softmax; the exports read back by `loom neighbors` and by gensim and
// rewritten by `loom export` from the checkpoint; a
// config with nothing to train is refused naming the key.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace loom::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string kExample = std::string(LOOM_SOURCE_DIR) + "/examples/word2vec.toml";

RunResult train(int np, const std::string& run_dir, std::vector<std::string> sets = {}) {
  std::vector<std::string> args = {"train", kExample, "--set", "run.dir=" + run_dir, "--set", "progress.interval_s=30"};
  for (const std::string& s : sets) args.insert(args.end(), {"--set", s});
  return run(loom_cmd(np, args), 300s);
}

nlohmann::json eval_json(const std::string& run_dir) { return nlohmann::json::parse(read_file(run_dir + "/eval.json")); }

class Word2VecRanks : public ::testing::TestWithParam<int> {};

TEST_P(Word2VecRanks, SkipGramReachesThePlantedThresholdAndExports) {
  const int np = GetParam();
  TempDir dir;
  const std::string run_dir = dir.file("run");
  RunResult r = train(np, run_dir);
  ASSERT_FALSE(r.timed_out);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  nlohmann::json e = eval_json(run_dir);
  const double total = e["analogy"]["total"]["accuracy"].get<double>();
  std::printf("np=%d: skip-gram planted analogy accuracy %.4f, final loss %.4f\n", np, total, e["final_loss"].get<double>());
  EXPECT_GE(total, 0.9) << r.out;
  EXPECT_EQ(e["analogy"]["total"]["answered"].get<int64_t>(), 528);
  EXPECT_EQ(e["world_size"].get<int>(), np);
  EXPECT_EQ(e["arch"].get<std::string>(), "skipgram");
  EXPECT_EQ(e["epochs"].size(), 5u);
  EXPECT_EQ(e["words"].get<int64_t>(), 5 * 160000);
  EXPECT_NE(r.err.find("epoch 5/5: loss"), std::string::npos) << r.err;
  EXPECT_NE(r.out.find("france : paris :: germany : ?  ->  berlin"), std::string::npos) << r.out;
  for (const char* f : {"vectors.txt", "vectors.w2v.txt", "vectors.bin", "vocab.txt", "eval.json"})
    EXPECT_TRUE(fs::exists(run_dir + "/" + f)) << f;
}

INSTANTIATE_TEST_SUITE_P(Np, Word2VecRanks, ::testing::Values(1, 2, 3));

TEST(Word2VecE2e, CbowHierarchicalSoftmaxOnTwoRanks) {
  TempDir dir;
  const std::string run_dir = dir.file("run");
  RunResult r = train(2, run_dir, {"word2vec.arch=cbow", "word2vec.hs=true", "word2vec.negative=0", "word2vec.epochs=10"});
  ASSERT_EQ(r.status, 0) << r.err;
  nlohmann::json e = eval_json(run_dir);
  EXPECT_GE(e["analogy"]["total"]["accuracy"].get<double>(), 0.9) << r.out;
  EXPECT_EQ(e["arch"].get<std::string>(), "cbow");
  RunResult inspect = run(loom_cmd(1, {"inspect", run_dir + "/checkpoints"}), 60s);
  ASSERT_EQ(inspect.status, 0) << inspect.err;
  EXPECT_NE(inspect.out.find("/model/syn1"), std::string::npos) << inspect.out;
  EXPECT_EQ(inspect.out.find("/model/syn1neg"), std::string::npos) << inspect.out;
}

TEST(Word2VecE2e, ExportsReadBackByLoomAndGensim) {
  TempDir dir;
  const std::string run_dir = dir.file("run");
  RunResult r = train(1, run_dir);
  ASSERT_EQ(r.status, 0) << r.err;
  std::string first;
  for (const char* f : {"vectors.txt", "vectors.w2v.txt", "vectors.bin"}) {
    RunResult n = run(loom_cmd(1, {"neighbors", run_dir + "/" + f, "paris", "-k", "3"}), 60s);
    ASSERT_EQ(n.status, 0) << f << ": " << n.err;
    if (first.empty()) first = n.out;
    EXPECT_EQ(n.out, first) << f << " gives other neighbours: the formats do not round-trip";
  }
  // `loom export` from the final checkpoint writes syn0: the same bytes as the run's exports.
  for (const auto& [format, file] : {std::pair{"word2vec", "vectors.w2v.txt"}, std::pair{"word2vec-bin", "vectors.bin"}}) {
    RunResult ex = run(loom_cmd(1, {"export", run_dir + "/checkpoints", "--format", format, "--out", dir.file("x")}), 60s);
    ASSERT_EQ(ex.status, 0) << ex.err;
    EXPECT_EQ(read_file(dir.file("x")), read_file(run_dir + "/" + file)) << format;
  }
  RunResult glove_only = run(loom_cmd(1, {"export", run_dir + "/checkpoints", "--output", "w", "--out", dir.file("y")}), 60s);
  EXPECT_NE(glove_only.status, 0);
  EXPECT_NE(glove_only.err.find("--output w applies to GloVe checkpoints"), std::string::npos) << glove_only.err;
  EXPECT_FALSE(fs::exists(dir.file("y")));
  RunResult probe = run({"/usr/bin/python3", "-c", "import gensim"}, 60s);
  if (probe.status != 0) LOOM_SKIP_OR_FAIL("gensim missing: apt-get install python3-gensim");
  RunResult g = run({"/usr/bin/python3", "-c",
                     "import sys\nfrom gensim.models import KeyedVectors as K\n"
                     "t = K.load_word2vec_format(sys.argv[1]); b = K.load_word2vec_format(sys.argv[2], binary=True)\n"
                     "print(len(t.index_to_key), t.vector_size, (t['paris'] == b['paris']).all(), "
                     "t.most_similar(positive=['germany', 'paris'], negative=['france'], topn=1)[0][0])",
                     run_dir + "/vectors.w2v.txt", run_dir + "/vectors.bin"},
                    120s);
  ASSERT_EQ(g.status, 0) << g.err;
  EXPECT_NE(g.out.find("216 50 True berlin"), std::string::npos) << g.out;
}

TEST(Word2VecE2e, NothingToTrainIsAConfigError) {
  TempDir dir;
  RunResult r = train(1, dir.file("run"), {"word2vec.negative=0"});
  EXPECT_EQ(r.status, 2) << "loom exits 2 on a config error";
  EXPECT_NE(r.err.find("word2vec.negative"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace loom::test
