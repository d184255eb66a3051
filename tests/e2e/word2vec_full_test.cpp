// `loom export --format word2vec-full` (Note [Continuing in gensim] in
// launch/kinds/word2vec_full.cpp) as a user runs it: train word2vec with the `loom` binary,
// export the checkpoint, build the gensim model with the exported to_gensim.py, and continue
// training it in gensim. Checked: the input and output weights arrive in gensim bit for bit,
// word by word; gensim trains from them (its parameters move); and gensim's first epoch
// starts from what loom learned, not from scratch: its training loss is well below the loss
// of the same epoch from loom's input vectors with zeroed output weights (what a user who
// had only the exported vectors would get).
#include <sys/stat.h>

#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace loom::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kExample = LOOM_SOURCE_DIR "/examples/word2vec.toml";
constexpr const char* kPython = "/usr/bin/python3";

constexpr const char* kCheck = R"PY(
import sys, importlib.util
import numpy as np
from gensim.models import KeyedVectors, Word2Vec

export_dir, model_path, corpus = sys.argv[1], sys.argv[2], sys.argv[3]
spec = importlib.util.spec_from_file_location("to_gensim", export_dir + "/to_gensim.py")
to_gensim = importlib.util.module_from_spec(spec)
spec.loader.exec_module(to_gensim)

m = Word2Vec.load(model_path)
kv = KeyedVectors.load_word2vec_format(export_dir + "/vectors.bin", binary=True)
syn1neg = np.load(export_dir + "/syn1neg.npy")
assert len(m.wv) == len(kv), (len(m.wv), len(kv))
for i, w in enumerate(kv.index_to_key):
    j = m.wv.key_to_index[w]
    assert np.array_equal(m.wv.vectors[j], kv.vectors[i]), w
    assert np.array_equal(m.syn1neg[j], syn1neg[i]), w
assert np.abs(syn1neg).max() > 0, "syn1neg is all zeros: loom trained nothing into it"
print("weights equal word by word:", len(kv), "words")

sentences = [line.split() for line in open(corpus, encoding="utf-8")]

# gensim's loss over an epoch at a learning rate too small to move anything: what loom's
# weights score in gensim's own objective, against the same with the output weights zeroed
# (what a user with only the input vectors would start from: ln 2 per prediction).
def epoch_loss(model):
    model.train(sentences, total_examples=len(sentences), epochs=1, start_alpha=1e-9, end_alpha=1e-9,
                compute_loss=True)
    return model.get_latest_training_loss()
warm = epoch_loss(to_gensim.build(export_dir))
cold_model = to_gensim.build(export_dir)
cold_model.syn1neg[:] = 0
cold = epoch_loss(cold_model)
print("gensim's loss over one epoch with loom's weights %.1f, with zeroed output weights %.1f" % (warm, cold))
assert warm < 0.8 * cold, (warm, cold)

# And gensim continues training the loaded model: its parameters move.
before, before_out = m.wv.vectors.copy(), m.syn1neg.copy()
m.train(sentences, total_examples=len(sentences), epochs=1)
moved = float(np.abs(m.wv.vectors - before).max())
moved_out = float(np.abs(m.syn1neg - before_out).max())
print("one more epoch in gensim moved the input vectors by up to %.3g, the output weights by %.3g" % (moved, moved_out))
assert moved > 0 and moved_out > 0
print("ok")
)PY";

bool python_has(const std::string& module) {
  struct stat st {};
  if (::stat(kPython, &st) != 0) return false;
  return run({kPython, "-c", "import " + module}, 120s).status == 0;
}

TEST(Word2VecFull, GensimContinuesTrainingFromTheExport) {
  if (!python_has("gensim") || !python_has("numpy"))
    LOOM_SKIP_OR_FAIL(std::string(kPython) + " with gensim and numpy is missing: apt-get install python3-gensim");
  TempDir dir;
  const std::string run_dir = dir.file("run");
  const RunResult train = run({loom_binary(), "train", kExample, "--set", "run.dir=" + run_dir, "--set",
                               "corpus.synthetic_sentences=3000", "--set", "word2vec.epochs=3", "--set",
                               "word2vec.dim=16", "--set", "eval.every_epochs=0", "--set", "progress.bar=off"},
                              300s);
  ASSERT_FALSE(train.timed_out);
  ASSERT_EQ(train.status, 0) << train.err;

  const std::string out = dir.file("w2v-full");
  const RunResult exported = run({loom_binary(), "export", run_dir + "/checkpoints", "--format", "word2vec-full",
                                  "--out", out}, 120s);
  ASSERT_EQ(exported.status, 0) << exported.out << exported.err;
  EXPECT_NE(exported.out.find("to_gensim.py"), std::string::npos) << exported.out;
  for (const char* f : {"vectors.bin", "syn1neg.npy", "vocab.txt", "gensim.json", "to_gensim.py"})
    EXPECT_TRUE(std::filesystem::exists(out + "/" + f)) << f;

  // The recipe as the export's message tells a user to run it.
  const std::string model = dir.file("w2v.model");
  const RunResult built = run({kPython, out + "/to_gensim.py", out, model}, 300s);
  ASSERT_EQ(built.status, 0) << built.out << built.err;
  write_file(dir.file("check.py"), kCheck);
  const RunResult check = run({kPython, dir.file("check.py"), out, model, run_dir + "/planted.txt"}, 300s);
  std::printf("%s", check.out.c_str());
  EXPECT_EQ(check.status, 0) << check.out << check.err;
  EXPECT_NE(check.out.find("ok"), std::string::npos) << check.out << check.err;

  // A GloVe format name on the wrong kind, and hierarchical softmax, are refused by name.
  const RunResult hs = run({loom_binary(), "train", kExample, "--set", "run.dir=" + dir.file("hs"), "--set",
                            "corpus.synthetic_sentences=500", "--set", "word2vec.epochs=1", "--set", "word2vec.dim=8",
                            "--set", "word2vec.hs=true", "--set", "word2vec.negative=0", "--set",
                            "eval.every_epochs=0", "--set", "progress.bar=off"},
                           300s);
  ASSERT_EQ(hs.status, 0) << hs.err;
  const RunResult refused = run({loom_binary(), "export", dir.file("hs") + "/checkpoints", "--format", "word2vec-full",
                                 "--out", dir.file("hs-full")}, 120s);
  EXPECT_EQ(refused.status, 2) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("hierarchical softmax"), std::string::npos) << refused.err;
  EXPECT_FALSE(std::filesystem::exists(dir.file("hs-full/vectors.bin")));
}

}  // namespace
}  // namespace loom::test
