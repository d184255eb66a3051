// GloVe through the real `loom train` (glove.threads = 1) at 1 and 2 ranks: twenty kills of
// a rank each (Note [Twenty kills of a run] in kill_plan.h: six aimed at the points of a
// checkpoint write, one at the resume's own load, one from the launch on - corpus,
// vocabulary, co-occurrence -, twelve inside random steps), then --resume auto, and the
// final parameters, AdaGrad state, every step's loss and the exported vectors equal an
// uninterrupted run's bit for bit. Then resumes at another world size finish and learn.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "tests/fault/kill_plan.h"
#include "tests/support/checkpoint_state.h"
#include "tests/support/test_support.h"

namespace loom::test {
namespace {

// The planted corpus (D 400, 20 epochs: 180 steps, ~1 s at one rank), with checkpoints of
// ~1.4 MB every 10 steps.
KillJob job() {
  KillJob j;
  j.every = 10;
  j.command = train_command(std::string(LOOM_SOURCE_DIR) + "/examples/glove.toml",
                            {"run.threads=1", "glove.threads=1", "glove.dim=400", "glove.epochs=20",
                             "checkpoint.every_steps=10", "checkpoint.keep_last=2", "eval.every_epochs=0",
                             "progress.interval_s=30"});
  j.outputs = {"vectors.txt"};
  return j;
}

class GloveKillResume : public ::testing::TestWithParam<int> {};

TEST_P(GloveKillResume, TwentyKillsThenResumeAutoEqualAnUninterruptedRunBitForBit) {
  TempDir dir;
  expect_twenty_kills_resume_bit_for_bit(job(), GetParam(), dir);
}

INSTANTIATE_TEST_SUITE_P(Np, GloveKillResume, ::testing::Values(1, 2));

class OtherWorldSize : public ::testing::TestWithParam<std::pair<int, int>> {};

TEST_P(OtherWorldSize, ResumesMidEpochAndLearns) {
  TempDir dir;
  expect_resume_at_other_world_size(std::string(LOOM_SOURCE_DIR) + "/examples/glove.toml", {"glove.threads=1", "run.threads=1"}, 25,
                                    GetParam().first, GetParam().second, dir);
}

INSTANTIATE_TEST_SUITE_P(Resplit, OtherWorldSize, ::testing::Values(std::pair{3, 2}, std::pair{2, 3}));

}  // namespace
}  // namespace loom::test
