// GloVe through the real `loom train` on 2 ranks (glove.threads = 1): kill -9 one rank at a
// random moment (any phase: corpus, vocabulary, co-occurrence, training, export) and in
// the middle of a checkpoint write, resume with --resume auto until it finishes, and the
// final parameters, AdaGrad state and exported vectors equal an uninterrupted run's bit
// for bit.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <filesystem>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/checkpoint_state.h"
#include "tests/support/test_support.h"

namespace loom::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr int kNp = 2;
constexpr int kEpochs = 60;

// The planted corpus, made slow enough to be killed mid-run (D 400, 60 epochs: ~1.5 s on
// 2 ranks), with checkpoints of ~1.4 MB every 10 steps.
std::vector<std::string> command(const std::string& run_dir, const std::string& resume = "") {
  std::vector<std::string> cmd = mpirun_prefix(kNp);
  cmd.insert(cmd.end(), {loom_binary(), "train", std::string(LOOM_SOURCE_DIR) + "/examples/glove.toml"});
  for (const std::string& s :
       {"run.dir=" + run_dir, std::string("run.threads=1"), std::string("glove.threads=1"), std::string("glove.dim=400"),
        "glove.epochs=" + std::to_string(kEpochs), std::string("checkpoint.every_steps=10"),
        std::string("checkpoint.keep_last=2"), std::string("eval.every_epochs=0"), std::string("progress.interval_s=30")})
    cmd.insert(cmd.end(), {"--set", s});
  if (!resume.empty()) cmd.insert(cmd.end(), {"--resume", resume});
  return cmd;
}

TEST(GloveKillResume, KilledRankThenResumeAutoEqualsAnUninterruptedRunBitForBit) {
  TempDir ref_dir;
  const std::string ref_run = ref_dir.file("run");
  const auto t0 = std::chrono::steady_clock::now();
  RunResult ref = run(command(ref_run), 300s);
  ASSERT_EQ(ref.status, 0) << ref.err;
  const auto duration = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  const auto want = checkpoint_state(final_checkpoint(ref_run));
  ASSERT_FALSE(want.empty());
  const std::string want_vectors = read_file(ref_run + "/vectors.txt");
  std::printf("uninterrupted run: %lld ms\n", static_cast<long long>(duration.count()));

  std::mt19937 gen(20261122u);
  int in_write = 0;
  for (int i = 0; i < 4; ++i) {
    TempDir dir;
    const std::string run_dir = dir.file("run");
    {
      Process p(command(run_dir));
      if (i % 2 == 0) {   // let 1 to 3 checkpoints commit, then kill inside the next write
        const int skip = 1 + static_cast<int>(gen() % 3);
        bool seen = false;
        std::string tmp;
        for (int s = 0; s <= skip && (seen = wait_for_checkpoint_write(run_dir + "/checkpoints", p, 120s, &tmp)); ++s) {
          if (s < skip) {
            ASSERT_TRUE(wait_until([&] { return !fs::exists(tmp); }, 120s, &p)) << tmp << " stays";
          }
        }
        in_write += seen ? 1 : 0;
      } else {
        std::uniform_int_distribution<int64_t> when(0, duration.count());
        std::this_thread::sleep_for(std::chrono::milliseconds(when(gen)));
      }
      kill_one_rank(p, "loom", gen);
      // Odd kills fall at random instants from the launch on, MPI_Init included.
      ASSERT_TRUE(wait_for_killed_job(p, "loom", 60s, MpirunTeardownHang::kToleratedOpenMpi41Race));
    }
    bool finished = false;
    for (int tries = 0; tries < 3 && !finished; ++tries) {
      RunResult r = run(command(run_dir, "auto"), 300s);
      ASSERT_FALSE(r.timed_out) << r.err;
      finished = r.status == 0;
      if (!finished) {
        ADD_FAILURE() << "resume exited " << r.status << ":\n" << r.err;
      }
      const size_t at = r.err.find("resumed from");
      std::printf("kill %d: %s\n", i, at == std::string::npos ? "no checkpoint yet, started fresh"
                                                              : r.err.substr(at, r.err.find('\n', at) - at).c_str());
      if (i % 2 == 0) {
        EXPECT_NE(at, std::string::npos) << "kill " << i << " came after a committed checkpoint";
      }
    }
    ASSERT_TRUE(finished);
    expect_equal_state(checkpoint_state(final_checkpoint(run_dir)), want, "kill " + std::to_string(i));
    EXPECT_EQ(read_file(run_dir + "/vectors.txt"), want_vectors) << "kill " << i;
  }
  EXPECT_GE(in_write, 1) << "no kill landed inside a checkpoint write";
  std::printf("%d of 2 write-targeted kills found a checkpoint being written\n", in_write);
}

class OtherWorldSize : public ::testing::TestWithParam<std::pair<int, int>> {};

TEST_P(OtherWorldSize, ResumesMidEpochAndLearns) {
  TempDir dir;
  expect_resume_at_other_world_size(std::string(LOOM_SOURCE_DIR) + "/examples/glove.toml", {"glove.threads=1", "run.threads=1"}, 25,
                                    GetParam().first, GetParam().second, dir);
}

INSTANTIATE_TEST_SUITE_P(Resplit, OtherWorldSize, ::testing::Values(std::pair{3, 2}, std::pair{2, 3}));

}  // namespace
}  // namespace loom::test
