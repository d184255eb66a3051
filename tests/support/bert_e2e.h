#pragma once
// Shared by the BERT tests that run the real `loom` binary (tests/e2e/bert_test.cpp,
// tests/fault/bert_resume_test.cpp, tests/launch/test_bert_export.cpp): a generated corpus
// of blank-line separated documents, a WordPiece vocabulary learnt from it by `loom
// tokenizer train`, and a tiny BERT config. Header-only.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace loom::test {

// Deterministic documents of ~`bytes` bytes: each has a "topic" of 4 nouns and 4 to 9
// sentences about them, one per line; documents are separated by a blank line. The topics
// make NSP learnable (a random B talks about other nouns), the small vocabulary MLM.
inline std::string make_bert_documents(size_t bytes, unsigned seed) {
  static const char* kNouns[] = {"king",    "queen",  "river",  "mountain", "city",   "farmer", "soldier",
                                 "child",   "teacher", "doctor", "ship",    "horse",  "garden", "market",
                                 "castle",  "forest", "bridge", "village",  "letter", "story"};
  static const char* kVerbs[] = {"sees",    "builds", "crosses", "finds",   "loves", "writes",
                                 "carries", "follows", "watches", "helps",  "opens", "reads"};
  static const char* kAdjs[] = {"old", "young", "small", "large", "quiet", "bright", "dark", "happy", "green", "famous"};
  std::mt19937 gen(seed);
  std::string text;
  while (text.size() < bytes) {
    if (!text.empty()) text += "\n";
    const char* topic[4];
    for (const char*& t : topic) t = kNouns[gen() % 20];
    for (int s = 0, n = 4 + int(gen() % 6); s < n; ++s)
      text += std::string("The ") + kAdjs[gen() % 10] + " " + topic[gen() % 4] + " " + kVerbs[gen() % 12] + " the " +
              kAdjs[gen() % 10] + " " + topic[gen() % 4] + ".\n";
  }
  return text;
}

// `loom tokenizer train --kind wordpiece` on `corpus` into `out_dir`; returns vocab.txt's path
// (empty, with a test failure, when it did not succeed).
inline std::string train_wordpiece(const std::string& corpus, const std::string& out_dir, int vocab_size = 400) {
  RunResult r = run(loom_cmd(1, {"tokenizer", "train", "--kind", "wordpiece", "--vocab-size",
                                      std::to_string(vocab_size), "--corpus", corpus, "--out", out_dir}),
                    std::chrono::seconds(120));
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  return r.status == 0 ? out_dir + "/vocab.txt" : "";
}

// A tiny BERT (2 layers, hidden 32, seq_len 32, batch 8) on WordPiece sentence pairs, one
// thread per rank, `steps` steps; the corpus and the vocabulary come as --set overrides.
inline std::string bert_tiny_config(int steps, int eval_every, int checkpoint_every = 0) {
  std::string text =
      "[run]\nname = \"bert\"\nseed = 5\nthreads = 1\n"
      "[train]\nmodel = \"bert\"\n"
      "[tokens]\ntokenizer = \"wordpiece\"\nlowercase = true\ndocuments = \"blank_line\"\nheldout_fraction = 0.1\n"
      "[bert]\nn_layer = 2\nn_head = 2\nhidden = 32\nintermediate = 64\nmax_position = 64\nseq_len = 32\n"
      "max_predictions = 5\nbatch_size = 8\nsteps = " + std::to_string(steps) +
      "\nlr = 5e-3\nwarmup_steps = 2\neval_every = " + std::to_string(eval_every) + "\neval_batches = 2\n"
      "[progress]\ninterval_s = 30\n";
  if (checkpoint_every > 0) text += "[checkpoint]\nevery_steps = " + std::to_string(checkpoint_every) + "\n";
  return text;
}

}  // namespace loom::test
