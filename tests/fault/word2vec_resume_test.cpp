// word2vec through the real `loom train` (word2vec.threads = 1) at 1 and 2 ranks: twenty
// kills of a rank each (Note [Twenty kills of a run] in kill_plan.h: six aimed at the points
// of a checkpoint write, one at the resume's own load, one from the launch on, twelve inside
// random steps), then --resume auto, and the final parameters, every step's loss and the
// exported vectors equal an uninterrupted run's bit for bit (the checkpoint holds the cursor
// and every thread's RNG position; the learning rate follows the cursor). Then resumes at
// another world size finish every epoch and still learn.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "tests/fault/kill_plan.h"
#include "tests/support/checkpoint_state.h"
#include "tests/support/test_support.h"

namespace loom::test {
namespace {

// The planted corpus (skip-gram, D 200, 4 epochs: ~630 steps of 1024 words, ~2 s at one
// rank), with checkpoints every 50 steps. Every row is rare and summed only every 3rd step
// (Note [word2vec synchronisation]), so each checkpoint waits for such a step (50 -> 51,
// 100 -> 102...) and a resumed run starts from one.
KillJob job() {
  KillJob j;
  j.every = 50;
  j.command = train_command(std::string(LOOM_SOURCE_DIR) + "/examples/word2vec.toml",
                            {"run.threads=1", "word2vec.threads=1", "word2vec.dim=200", "word2vec.epochs=4",
                             "word2vec.rare_every=3", "word2vec.rare_below=1e9", "checkpoint.every_steps=50",
                             "checkpoint.keep_last=2", "eval.every_epochs=0", "progress.interval_s=30"});
  j.outputs = {"vectors.txt"};
  return j;
}

class Word2VecKillResume : public ::testing::TestWithParam<int> {};

TEST_P(Word2VecKillResume, TwentyKillsThenResumeAutoEqualAnUninterruptedRunBitForBit) {
  TempDir dir;
  expect_twenty_kills_resume_bit_for_bit(job(), GetParam(), dir);
}

INSTANTIATE_TEST_SUITE_P(Np, Word2VecKillResume, ::testing::Values(1, 2));

class OtherWorldSize : public ::testing::TestWithParam<std::pair<int, int>> {};

TEST_P(OtherWorldSize, ResumesMidEpochAndLearns) {
  TempDir dir;
  expect_resume_at_other_world_size(std::string(LOOM_SOURCE_DIR) + "/examples/word2vec.toml", {"word2vec.threads=1", "run.threads=1", "word2vec.step_words=8192"}, 5,
                                    GetParam().first, GetParam().second, dir);
}

INSTANTIATE_TEST_SUITE_P(Resplit, OtherWorldSize, ::testing::Values(std::pair{3, 2}, std::pair{2, 3}));

}  // namespace
}  // namespace loom::test
