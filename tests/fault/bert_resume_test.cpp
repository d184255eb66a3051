// BERT through the real `loom train` (run.threads = 1, a tiny model on a generated corpus
// of blank-line separated documents with a WordPiece vocabulary learnt in the test, a
// checkpoint every 4 steps) at 1 and 2 ranks: twenty kills each, then --resume auto, ending
// bit for bit where an uninterrupted run ends - parameters, optimizer slots, per-step
// losses, the held-out MLM/NSP curve (Note [Twenty kills of a transformer run] in
// kill_plan.h; Note [BERT data parallelism]: the checkpoint holds the global example
// cursor, the optimizer's step and the held-out curve; pairing and masking are drawn from
// (seed, global example index)). Then a run written at np 2 resumes at np 1 and at np 3
// from the same global step and its losses stay within float tolerance of the
// uninterrupted np 2 run. LAMB at np 2: three random kills, each resumed bit for bit, and
// its curve equal to np 1's within float tolerance.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "tests/fault/kill_plan.h"
#include "tests/support/bert_e2e.h"
#include "tests/support/checkpoint_state.h"
#include "tests/support/test_support.h"

namespace loom::test {
namespace {

constexpr int kSteps = 40;
constexpr int kEvery = 4;   // checkpoint.every_steps

// The corpus and the config, shared by every test of this file.
class BertResume : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir;
    write_file(dir_->file("docs.txt"), make_bert_documents(150 * 1000, 17));
    vocab_ = train_wordpiece(dir_->file("docs.txt"), dir_->file("voc"));
    write_file(dir_->file("bert.toml"), bert_tiny_config(kSteps, 10, kEvery));
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }

  void SetUp() override {
    if (vocab_.empty()) GTEST_FAIL() << "the suite's setup could not learn a WordPiece vocabulary";
  }

  static KillJob job() {
    KillJob j;
    j.steps = kSteps;
    j.every = kEvery;
    j.command = train_command(dir_->file("bert.toml"),
                              {"corpus.paths=[\"" + dir_->file("docs.txt") + "\"]", "tokens.vocab=" + vocab_});
    j.heldout_curve = true;
    j.eval_keys = {"mlm_loss", "nsp_loss"};
    return j;
  }

  static TempDir* dir_;
  static std::string vocab_;
};

TempDir* BertResume::dir_ = nullptr;
std::string BertResume::vocab_;

class BertKillResume : public BertResume, public ::testing::WithParamInterface<int> {};

TEST_P(BertKillResume, TwentyKillsThenResumeAutoEqualAnUninterruptedRunBitForBit) {
  expect_twenty_kills_resume_bit_for_bit(job(), GetParam(), *dir_);
}

INSTANTIATE_TEST_SUITE_P(Np, BertKillResume, ::testing::Values(1, 2));

// LAMB (bert.optimizer = lamb: per-parameter trust ratios over the whole parameter, its m
// and v in the checkpoint) at np 2: three kill -9s at random instants, each resumed with
// --resume auto, end bit for bit where the uninterrupted LAMB run ends; and that run's loss
// curve equals np 1's within float tolerance (Note [BERT e2e tolerances] in tests/e2e).
TEST_F(BertResume, LambAtNp2KilledThenResumeAutoEqualsAnUninterruptedRunBitForBit) {
  KillJob lamb = job();
  lamb.command = train_command(dir_->file("bert.toml"), {"corpus.paths=[\"" + dir_->file("docs.txt") + "\"]",
                                                          "tokens.vocab=" + vocab_, "bert.optimizer=lamb",
                                                          "bert.lr=2e-2"});
  expect_random_kills_resume_bit_for_bit(lamb, 2, 3, *dir_);
  if (HasFatalFailure()) return;
  const std::map<int64_t, double> np2 = step_losses(dir_->file("rref2"));
  const RunResult one = run(lamb.command(1, dir_->file("lamb_np1"), "", {}), std::chrono::seconds(300));
  ASSERT_EQ(one.status, 0) << one.err;
  EXPECT_NE((one.out + one.err).find("LAMB"), std::string::npos) << one.out << one.err;
  const std::map<int64_t, double> np1 = step_losses(dir_->file("lamb_np1"));
  ASSERT_EQ(np1.size(), np2.size());
  ASSERT_EQ(np1.size(), size_t(kSteps));
  double worst = 0.0;
  for (const auto& [step, loss] : np1) worst = std::max(worst, std::abs(np2.at(step) - loss) / std::abs(loss));
  std::printf("LAMB np 2 vs np 1: losses within %.2e relative; loss %.4f -> %.4f\n", worst, np1.begin()->second,
              np1.rbegin()->second);
  EXPECT_LE(worst, 1e-5);
  EXPECT_LT(np1.rbegin()->second, np1.begin()->second - 0.5) << "LAMB did not train";
}

// Float tolerance as Note [GPT resume tolerance] (gpt_resume_test.cpp).
TEST_F(BertResume, ResumeAtOtherWorldSizesContinuesFromTheSameGlobalStep) {
  expect_resume_at_other_world_sizes(job(), *dir_);
}

}  // namespace
}  // namespace loom::test
