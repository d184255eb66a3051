// GPT through the real `loom train` (run.threads = 1, a tiny model on a generated character
// corpus, a checkpoint every 4 steps) at 1 and 2 ranks: twenty kills each, then --resume
// auto, ending bit for bit where an uninterrupted run ends (Note [Twenty kills of a
// run] in kill_plan.h; Note [GPT data parallelism]: the checkpoint holds
// the global window cursor and AdamW's step; the data order depends on the seed alone).
// Then a run written at np 2 resumes at np 1 and at np 3 from the same global step and its
// losses stay within float tolerance of the uninterrupted np 2 run.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "tests/fault/kill_plan.h"
#include "tests/support/test_support.h"

namespace loom::test {
namespace {

constexpr int kSteps = 40;
constexpr int kEvery = 4;   // checkpoint.every_steps

// Deterministic "plays" of a small vocabulary, ~`bytes` bytes.
std::string make_plays(size_t bytes, unsigned seed) {
  static const char* kWords[] = {"the", "king", "queen", "lord", "lady", "sword", "crown", "night",
                                 "day", "love", "death", "war", "peace", "good", "ill", "fair"};
  static const char* kNames[] = {"ROMEO", "JULIET", "KING", "QUEEN", "FOOL"};
  std::mt19937 gen(seed);
  std::string text;
  while (text.size() < bytes) {
    text += std::string(kNames[gen() % 5]) + ":\n";
    for (int l = 0, lines = 1 + int(gen() % 3); l < lines; ++l) {
      for (int w = 0, words = 3 + int(gen() % 6); w < words; ++w) text += (w ? " " : "") + std::string(kWords[gen() % 16]);
      text += ".\n";
    }
    text += "\n";
  }
  return text;
}

// The corpus and the config, shared by every test of this file.
class GptResume : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    write_file(dir_->file("plays.txt"), make_plays(200 * 1000, 17));
    write_file(dir_->file("gpt.toml"),
               "[run]\nname = \"gpt\"\nseed = 9\nthreads = 1\n"
               "[train]\nmodel = \"gpt\"\n"
               "[tokens]\ntokenizer = \"char\"\ndocuments = \"file\"\nheldout_fraction = 0.1\n"
               "[gpt]\nn_layer = 2\nn_head = 2\nd_model = 32\nseq_len = 32\nbatch_size = 6\n"
               "steps = " + std::to_string(kSteps) + "\nlr = 3e-3\nlr_min = 3e-4\nwarmup_steps = 4\n"
               "eval_every = 10\neval_batches = 2\n"
               "[checkpoint]\nevery_steps = " + std::to_string(kEvery) + "\n"
               "[progress]\ninterval_s = 30\n");
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  static KillJob job() {
    KillJob j;
    j.steps = kSteps;
    j.every = kEvery;
    j.command = train_command(dir_->file("gpt.toml"), {"corpus.paths=[\"" + dir_->file("plays.txt") + "\"]"});
    j.heldout_curve = true;
    j.eval_keys = {"heldout_loss"};
    return j;
  }

  static TempDir* dir_;
};

TempDir* GptResume::dir_ = nullptr;

class GptKillResume : public GptResume, public ::testing::WithParamInterface<int> {};

TEST_P(GptKillResume, TwentyKillsThenResumeAutoEqualAnUninterruptedRunBitForBit) {
  expect_twenty_kills_resume_bit_for_bit(job(), GetParam(), *dir_);
}

INSTANTIATE_TEST_SUITE_P(Np, GptKillResume, ::testing::Values(1, 2));

// Note [GPT resume tolerance]
// A resume at another world size continues from the same global window with the same
// parameters and AdamW moments, but each step's gradient is now summed over other ranks'
// slices, i.e. in another order: the same numbers up to float32 rounding (~1e-8 relative
// in the losses over these steps), so 1e-5 relative leaves room and still catches a
// resume from another position (a step's loss changes by ~1e-2 from one step to the next).
TEST_F(GptResume, ResumeAtOtherWorldSizesContinuesFromTheSameGlobalStep) {
  expect_resume_at_other_world_sizes(job(), *dir_);
}

}  // namespace
}  // namespace loom::test
