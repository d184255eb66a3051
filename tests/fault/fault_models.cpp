#include "tests/fault/fault_models.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/bert_e2e.h"

namespace loom::test {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

// The files every test shares: the GPT corpus, the BERT documents, vocabulary and config.
class Shared {
 public:
  static Shared& get() {
    static Shared shared;
    return shared;
  }
  const TempDir& dir() const { return dir_; }
  const std::string& bert_vocab() const { return bert_vocab_; }

 private:
  Shared() {
    RunResult g = run({loom_binary(), "generate-corpus", dir_.file("planted.txt"), "--sentences", "1500"}, 60s);
    EXPECT_EQ(g.status, 0) << g.out << g.err;
    write_file(dir_.file("bert.txt"), make_bert_documents(40 * 1000, 17));
    bert_vocab_ = train_wordpiece(dir_.file("bert.txt"), dir_.file("bert_vocab"), 300);
    write_file(dir_.file("bert.toml"), bert_tiny_config(6, 0, 1));
    write_file(dir_.file("gpt.toml"),
               "[run]\nname = \"gpt\"\nseed = 9\nthreads = 1\n"
               "[train]\nmodel = \"gpt\"\n"
               "[tokens]\ntokenizer = \"char\"\ndocuments = \"file\"\nheldout_fraction = 0.1\n"
               "[gpt]\nn_layer = 1\nn_head = 2\nd_model = 16\nseq_len = 16\nbatch_size = 4\nsteps = 6\n"
               "lr = 3e-3\nlr_min = 3e-4\nwarmup_steps = 2\neval_every = 0\neval_batches = 1\n"
               "[checkpoint]\nevery_steps = 1\n"
               "[progress]\ninterval_s = 30\n");
  }
  TempDir dir_;
  std::string bert_vocab_;
};

}  // namespace

const std::string& shared_dir() { return Shared::get().dir().path(); }
const std::string& bert_vocab() { return Shared::get().bert_vocab(); }

ModelCase model_case(const std::string& name) {
  const Shared& s = Shared::get();
  const std::vector<std::string> common = {"--set", "checkpoint.keep_last=1000", "--set", "progress.interval_s=30"};
  ModelCase m;
  m.name = name;
  if (name == "glove") {
    m.args = {std::string(LOOM_SOURCE_DIR) + "/examples/glove.toml", "--set", "corpus.synthetic_sentences=1500",
              "--set", "glove.dim=16", "--set", "glove.epochs=1", "--set", "glove.step_nnz=2048", "--set",
              "checkpoint.every_steps=1", "--set", "eval.every_epochs=0", "--set", "eval.examples=0", "--set",
              "vectors.formats=[\"glove\"]"};
    m.flipped = "/optimizer/W_ctx/gradsq";
    m.deleted = "/model/b_ctx";
    m.reshaped = "b";
    m.vectors = true;
  } else if (name == "word2vec") {
    // At 2 ranks a checkpoint can only follow every 4th step (word2vec.rare_every).
    m.args = {std::string(LOOM_SOURCE_DIR) + "/examples/word2vec.toml", "--set", "corpus.synthetic_sentences=1500",
              "--set", "word2vec.dim=16", "--set", "word2vec.epochs=1", "--set", "word2vec.step_words=384", "--set",
              "checkpoint.every_steps=4", "--set", "eval.every_epochs=0", "--set", "eval.examples=0", "--set",
              "vectors.formats=[\"glove\"]"};
    m.flipped = "/model/syn1neg";
    m.deleted = "/model/syn0";
    m.reshaped = "syn0";
    m.vectors = true;
  } else if (name == "gpt") {
    m.args = {s.dir().file("gpt.toml"), "--set", "corpus.paths=[\"" + s.dir().file("planted.txt") + "\"]"};
    m.flipped = "/model/h.0.attn.c_attn.weight";
    m.deleted = "/optimizer/wte.weight/v";
    m.reshaped = "h.0.mlp.c_fc.weight";
  } else {
    m.args = {s.dir().file("bert.toml"), "--set", "corpus.paths=[\"" + s.dir().file("bert.txt") + "\"]", "--set",
              "tokens.vocab=" + s.bert_vocab()};
    m.flipped = "/optimizer/encoder.layer.1.attention.self.query.weight/m";
    m.deleted = "/model/cls.predictions.bias";
    m.reshaped = "embeddings.LayerNorm.weight";
  }
  m.args.insert(m.args.end(), common.begin(), common.end());
  return m;
}

std::vector<std::string> train_cmd(const ModelCase& m, int np, const std::string& run_dir,
                                   const std::vector<std::string>& more) {
  std::vector<std::string> args = {"train"};
  args.insert(args.end(), m.args.begin(), m.args.end());
  args.insert(args.end(), {"--set", "run.dir=" + run_dir});
  args.insert(args.end(), more.begin(), more.end());
  return loom_cmd(np, args);
}


std::string checkpoint_name(int64_t step) {
  char name[32];
  std::snprintf(name, sizeof name, "step_%08lld.h5", static_cast<long long>(step));
  return name;
}

std::vector<int64_t> checkpoint_steps(const std::string& dir) {
  std::vector<int64_t> steps;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string n = e.path().filename().string();
    if (n.starts_with("step_") && n.ends_with(".h5")) steps.push_back(std::stoll(n.substr(5)));
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

}  // namespace loom::test
