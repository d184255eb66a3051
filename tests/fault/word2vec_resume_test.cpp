// word2vec through the real `loom train` (word2vec.threads = 1) at 1 and 2 ranks: kill -9
// one rank at a random moment (any phase: corpus, vocabulary, reading the shard, training,
// export) and in the middle of a checkpoint write, resume with --resume auto until it
// finishes, and the final parameters and exported vectors equal an uninterrupted run's bit
// for bit (the checkpoint holds the cursor and every thread's RNG position; the learning
// rate follows the cursor).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
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

constexpr int kEpochs = 8;

// The planted corpus, made slow enough to be killed mid-run (skip-gram, D 200, 8 epochs:
// a few seconds), with checkpoints every 100 steps of 1024 words. Every row is rare and
// summed only every 3rd step (Note [word2vec synchronisation]), so each checkpoint waits
// for such a step (100 -> 102, 200 -> 201...) and a resumed run starts from one.
std::vector<std::string> command(int np, const std::string& run_dir, const std::string& resume = "") {
  std::vector<std::string> cmd;
  if (np > 1) cmd = mpirun_prefix(np);
  cmd.insert(cmd.end(), {loom_binary(), "train", std::string(LOOM_SOURCE_DIR) + "/examples/word2vec.toml"});
  for (const std::string& s :
       {"run.dir=" + run_dir, std::string("run.threads=1"), std::string("word2vec.threads=1"),
        std::string("word2vec.dim=200"), "word2vec.epochs=" + std::to_string(kEpochs),
        std::string("word2vec.rare_every=3"), std::string("word2vec.rare_below=1e9"),
        std::string("checkpoint.every_steps=100"), std::string("checkpoint.keep_last=2"),
        std::string("eval.every_epochs=0"), std::string("progress.interval_s=30")})
    cmd.insert(cmd.end(), {"--set", s});
  if (!resume.empty()) cmd.insert(cmd.end(), {"--resume", resume});
  return cmd;
}

class Word2VecKillResume : public ::testing::TestWithParam<int> {};

TEST_P(Word2VecKillResume, KilledRankThenResumeAutoEqualsAnUninterruptedRunBitForBit) {
  const int np = GetParam();
  TempDir ref_dir;
  const std::string ref_run = ref_dir.file("run");
  const auto t0 = std::chrono::steady_clock::now();
  RunResult ref = run(command(np, ref_run), 300s);
  ASSERT_EQ(ref.status, 0) << ref.err;
  const auto duration = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  const auto want = checkpoint_state(final_checkpoint(ref_run));
  ASSERT_FALSE(want.empty());
  const std::string want_vectors = read_file(ref_run + "/vectors.txt");
  std::printf("np=%d uninterrupted run: %lld ms\n", np, static_cast<long long>(duration.count()));

  // Checkpoints of the uninterrupted run, for the time between two of them.
  int checkpoints = 0;
  for (size_t at = ref.err.find("(every_steps"); at != std::string::npos; at = ref.err.find("(every_steps", at + 1))
    ++checkpoints;
  ASSERT_GE(checkpoints, 3) << "the run is too short to be killed between checkpoints:\n" << ref.err;
  const int64_t between_ms = duration.count() / (checkpoints + 1);

  std::mt19937 gen(20261122u + static_cast<unsigned>(np));
  // Kind 0 kills inside a checkpoint write (after 1 to 3 commits) and is tried again, up to
  // 4 times, until the directory shows the write unfinished; kind 1 kills at a random
  // instant after the first commit. Every run is resumed and compared.
  int write_kills = 0, write_kills_inside = 0;
  for (int kind = 0; kind < 2; ++kind) {
    for (int attempt = 0; attempt < (kind == 0 ? 4 : 1); ++attempt) {
      const std::string what = "kill " + std::to_string(kind) + " attempt " + std::to_string(attempt);
      TempDir dir;
      const std::string run_dir = dir.file("run"), ckpt_dir = run_dir + "/checkpoints";
      std::string unfinished;
      std::vector<std::string> committed;   // complete checkpoints when the job died
      {
        // Write-aimed kills: each write pauses 300 ms with its .tmp complete (LOOM_FAULT_CHECKPOINT_PAUSE_MS).
        if (kind == 0) ::setenv("LOOM_FAULT_CHECKPOINT_PAUSE_MS", "300", 1);
        Process p(command(np, run_dir));
        ::unsetenv("LOOM_FAULT_CHECKPOINT_PAUSE_MS");
        const std::vector<pid_t> ranks = wait_for_ranks(p, "loom", static_cast<size_t>(np), 120s);
        ASSERT_EQ(ranks.size(), static_cast<size_t>(np)) << what << ":\n" << p.err();
        if (kind == 0) {   // let 1 to 3 checkpoints commit (their tmp renamed), then kill inside the next write
          const int skip = 1 + static_cast<int>(gen() % 3);
          std::string tmp;
          for (int w = 0; w <= skip; ++w) {
            ASSERT_TRUE(wait_for_checkpoint_write(ckpt_dir, p, 120s, &tmp)) << what << ": write " << w << "\n" << p.err();
            if (w < skip) {
              ASSERT_TRUE(wait_until([&] { return !fs::exists(tmp); }, 120s, &p)) << tmp << " stays";
            }
          }
        } else {           // a random instant after the first commit, before the run ends
          ASSERT_TRUE(wait_until([&] { return fs::exists(ckpt_dir + "/latest"); }, 120s, &p)) << p.err();
          std::uniform_int_distribution<int64_t> when(0, between_ms);
          std::this_thread::sleep_for(std::chrono::milliseconds(when(gen)));   // a random instant, on purpose
        }
        ASSERT_TRUE(p.running()) << what << ": the run ended before the kill";
        kill(ranks[gen() % ranks.size()], SIGKILL);
        // Long after MPI_Init: no teardown race to tolerate.
        ASSERT_TRUE(wait_for_killed_job(p, "loom", 60s, MpirunTeardownHang::kFailure)) << what;
        unfinished = unfinished_checkpoint_write(ckpt_dir);
        for (const auto& e : fs::directory_iterator(ckpt_dir))
          if (e.path().extension() == ".h5") committed.push_back(e.path().string());
      }
      ASSERT_FALSE(committed.empty()) << what << ": no checkpoint was committed before the kill";
      RunResult r = run(command(np, run_dir, "auto"), 300s);
      ASSERT_FALSE(r.timed_out) << r.err;
      ASSERT_EQ(r.status, 0) << what << ": resume exited " << r.status << ":\n" << r.err;
      const size_t at = r.err.find("resumed from ");
      ASSERT_NE(at, std::string::npos) << what << ": the resume started fresh:\n" << r.err;
      const std::string from = r.err.substr(at + 13, r.err.find(' ', at + 13) - at - 13);
      EXPECT_NE(std::find(committed.begin(), committed.end(), from), committed.end())
          << what << ": resumed from " << from << ", not a checkpoint complete when the job died";
      std::printf("np=%d %s: %s; resumed from %s\n", np, what.c_str(),
                  unfinished.empty() ? "no write was unfinished" : unfinished.c_str(), from.c_str());
      expect_equal_state(checkpoint_state(final_checkpoint(run_dir)), want, what);
      EXPECT_EQ(read_file(run_dir + "/vectors.txt"), want_vectors) << what;
      if (kind == 1) break;
      ++write_kills;
      if (!unfinished.empty()) {
        ++write_kills_inside;
        break;
      }
    }
  }
  EXPECT_EQ(write_kills_inside, 1) << "none of " << write_kills << " kills aimed at a checkpoint write left it unfinished";
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
