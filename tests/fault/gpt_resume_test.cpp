// GPT through the real `loom train` (run.threads = 1, a tiny model on a generated character
// corpus, a checkpoint every 4 steps) at 1 and 2 ranks: kill -9 one rank inside a
// checkpoint write (after one has committed) and at a random instant after the first
// checkpoint exists, resume with --resume auto until it finishes, and the final /model and
// /optimizer state equal an uninterrupted run's bit for bit, as do the per-step losses of
// metrics.jsonl from the resumed step on (Note [GPT data parallelism]: the checkpoint holds
// the global window cursor and AdamW's step; the data order depends on the seed alone).
// Then a run written at np 2 resumes at np 1 and at np 3 from the same global step and its
// losses stay within float tolerance of the uninterrupted np 2 run.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
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

  static std::vector<std::string> command(int np, const std::string& run_dir, const std::string& resume = "",
                                          std::vector<std::string> sets = {}) {
    std::vector<std::string> cmd = np > 1 ? mpirun_prefix(np) : std::vector<std::string>{};
    cmd.insert(cmd.end(), {loom_binary(), "train", dir_->file("gpt.toml"), "--set", "run.dir=" + run_dir, "--set",
                           "corpus.paths=[\"" + dir_->file("plays.txt") + "\"]"});
    for (const std::string& s : sets) cmd.insert(cmd.end(), {"--set", s});
    if (!resume.empty()) cmd.insert(cmd.end(), {"--resume", resume});
    return cmd;
  }

  static TempDir* dir_;
};

TempDir* GptResume::dir_ = nullptr;

// metrics.jsonl's loss by step; a resumed run appends, so a later record of a step replaces
// an earlier one (the killed run's steps after its last checkpoint). A line cut by kill -9
// is skipped.
std::map<int64_t, double> losses(const std::string& run_dir) {
  std::map<int64_t, double> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.contains("step") || !j.contains("loss")) continue;
    // By step index (from 0): metrics.jsonl counts steps done, from 1 (Note [Step numbers]).
    out[j["step"].get<int64_t>() - 1] = j["loss"].get<double>();
  }
  return out;
}

// The step a resume started from: "resumed from PATH after step N" in its stderr; -1 if none.
int64_t resumed_step(const std::string& err) {
  const std::string key = " after step ";
  const size_t at = err.find("resumed from");
  if (at == std::string::npos) return -1;
  const size_t s = err.find(key, at);
  return s == std::string::npos ? -1 : std::stoll(err.substr(s + key.size()));
}

class GptKillResume : public GptResume, public ::testing::WithParamInterface<int> {};

TEST_P(GptKillResume, KilledRankThenResumeAutoEqualsAnUninterruptedRunBitForBit) {
  const int np = GetParam();
  const std::string ref_run = dir_->file("ref" + std::to_string(np));
  const auto t0 = std::chrono::steady_clock::now();
  RunResult ref = run(command(np, ref_run), 300s);
  ASSERT_EQ(ref.status, 0) << ref.err;
  const auto duration = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  const auto want = checkpoint_state(final_checkpoint(ref_run));
  const std::map<int64_t, double> want_losses = losses(ref_run);
  ASSERT_EQ(want_losses.size(), size_t(kSteps));
  const nlohmann::json want_curve = nlohmann::json::parse(read_file(ref_run + "/eval.json"))["heldout"];
  ASSERT_GE(want_curve.size(), 2u);
  std::printf("np=%d uninterrupted run: %lld ms\n", np, static_cast<long long>(duration.count()));

  std::mt19937 gen(20261205u + static_cast<unsigned>(np));
  for (int i = 0; i < 2; ++i) {
    const std::string run_dir = dir_->file("kill" + std::to_string(np) + "_" + std::to_string(i));
    bool in_write = false;
    {
      Process p(command(np, run_dir));
      if (i == 0) {   // let 1 or 2 checkpoints commit, then kill inside the next write
        const int skip = 1 + static_cast<int>(gen() % 2);
        for (int s = 0; s <= skip && (in_write = wait_for_checkpoint_write(run_dir + "/checkpoints", p, 120s)); ++s) {
          if (s < skip) {   // wait for this write to end before looking for the next one
            const auto limit = std::chrono::steady_clock::now() + 60s;
            while (std::chrono::steady_clock::now() < limit && p.running()) {
              bool tmp = false;
              for (const auto& e : fs::directory_iterator(run_dir + "/checkpoints"))
                tmp = tmp || e.path().extension() == ".tmp";
              if (!tmp) break;
              std::this_thread::sleep_for(1ms);
            }
          }
        }
        ASSERT_TRUE(in_write) << "np " << np << ": no checkpoint write seen\n" << p.err();
      } else {        // a random instant once the first checkpoint has committed
        const auto limit = std::chrono::steady_clock::now() + 120s;
        while (!fs::exists(run_dir + "/checkpoints/latest") && p.running() && std::chrono::steady_clock::now() < limit)
          std::this_thread::sleep_for(2ms);
        ASSERT_TRUE(p.running()) << "the run ended before it could be killed\n" << p.err();
        std::uniform_int_distribution<int64_t> when(0, duration.count() / 2);
        std::this_thread::sleep_for(std::chrono::milliseconds(when(gen)));
      }
      kill_one_rank(p, "loom", gen);
      // Both kills follow a checkpoint event, long after MPI_Init: no hang is tolerated.
      ASSERT_TRUE(wait_for_killed_job(p, "loom", 60s, MpirunTeardownHang::kFailure));
    }
    bool torn = false;   // a checkpoint left half-written: the kill did land inside a write
    for (const auto& e : fs::directory_iterator(run_dir + "/checkpoints"))
      torn = torn || e.path().string().ends_with(".h5.tmp");
    int64_t from = -1;
    bool finished = false;
    for (int tries = 0; tries < 3 && !finished; ++tries) {
      RunResult r = run(command(np, run_dir, "auto"), 300s);
      ASSERT_FALSE(r.timed_out) << r.err;
      finished = r.status == 0;
      if (!finished) {
        ADD_FAILURE() << "resume exited " << r.status << ":\n" << r.err;
      }
      if (tries == 0) from = resumed_step(r.err);
      if (tries == 0) {
        EXPECT_GE(from, kEvery) << "kill " << i << " came after a committed checkpoint:\n" << r.err;
        EXPECT_LT(from, kSteps) << "kill " << i << " came after the run had finished:\n" << r.err;
      }
      EXPECT_EQ(from % kEvery, 0) << r.err;
    }
    ASSERT_TRUE(finished);
    std::printf("np=%d kill %d (%s): resumed after step %lld%s\n", np, i,
                i == 0 ? "aimed inside a checkpoint write" : "random", static_cast<long long>(from),
                torn ? "; a half-written checkpoint was left behind" : "");
    expect_equal_state(checkpoint_state(final_checkpoint(run_dir)), want, "kill " + std::to_string(i));
    const std::map<int64_t, double> got = losses(run_dir);
    for (int64_t s = std::max<int64_t>(from, 0); s < kSteps; ++s) {
      ASSERT_TRUE(got.count(s)) << "kill " << i << ": no metrics for step " << s;
      EXPECT_EQ(got.at(s), want_losses.at(s)) << "kill " << i << ", step " << s;
    }
    // The held-out curve before the kill came back from the checkpoint: the whole curve
    // equals the uninterrupted run's, value for value.
    EXPECT_EQ(nlohmann::json::parse(read_file(run_dir + "/eval.json"))["heldout"], want_curve)
        << "kill " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Np, GptKillResume, ::testing::Values(1, 2));

// Note [GPT resume tolerance]
// A resume at another world size continues from the same global window with the same
// parameters and AdamW moments, but each step's gradient is now summed over other ranks'
// slices, i.e. in another order: the same numbers up to float32 rounding (~1e-8 relative
// in the losses over these steps), so 1e-5 relative leaves room and still catches a
// resume from another position (a step's loss changes by ~1e-2 from one step to the next).
TEST_F(GptResume, ResumeAtOtherWorldSizesContinuesFromTheSameGlobalStep) {
  const std::string ref_run = dir_->file("ws_ref");
  RunResult ref = run(command(2, ref_run, "", {"checkpoint.keep_every_steps=" + std::to_string(kEvery)}), 300s);
  ASSERT_EQ(ref.status, 0) << ref.err;
  const std::map<int64_t, double> want = losses(ref_run);
  ASSERT_EQ(want.size(), size_t(kSteps));
  const nlohmann::json want_eval = nlohmann::json::parse(read_file(ref_run + "/eval.json"));
  constexpr int64_t kFrom = 12;
  const std::string ckpt = ref_run + "/checkpoints/step_00000012.h5";
  ASSERT_TRUE(fs::exists(ckpt));
  for (int np : {1, 3}) {
    const std::string run_dir = dir_->file("ws_to" + std::to_string(np));
    RunResult r = run(command(np, run_dir, ckpt), 300s);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(resumed_step(r.err), kFrom) << r.err;
    EXPECT_NE(r.err.find("written by 2 rank(s), now " + std::to_string(np)), std::string::npos) << r.err;
    const std::map<int64_t, double> got = losses(run_dir);
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got.begin()->first, kFrom);
    EXPECT_EQ(got.size(), size_t(kSteps - kFrom));
    double worst = 0.0;
    for (const auto& [step, loss] : got) {
      ASSERT_TRUE(want.count(step)) << step;
      worst = std::max(worst, std::abs(loss - want.at(step)) / want.at(step));
    }
    // The step the resume should start from differs from its neighbours by far more.
    const double neighbour = std::abs(want.at(kFrom - 1) - want.at(kFrom)) / want.at(kFrom);
    std::printf("np 2 -> np %d from step %lld: losses within %.2e relative (steps %lld and %lld differ by %.2e)\n", np,
                static_cast<long long>(kFrom), worst, static_cast<long long>(kFrom - 1), static_cast<long long>(kFrom),
                neighbour);
    EXPECT_LE(worst, 1e-5);
    EXPECT_GT(neighbour, 1e-3);
    const nlohmann::json e = nlohmann::json::parse(read_file(run_dir + "/eval.json"));
    EXPECT_EQ(e["world_size"].get<int>(), np);
    const double a = e["heldout_loss"].get<double>(), b = want_eval["heldout_loss"].get<double>();
    EXPECT_LE(std::abs(a - b), 1e-5 * b) << a << " vs " << b;
    EXPECT_EQ(final_step(run_dir), kSteps);
  }
}

}  // namespace
}  // namespace loom::test
