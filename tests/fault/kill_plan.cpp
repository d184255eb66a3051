#include "tests/fault/kill_plan.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <nlohmann/json.hpp>

#include <algorithm>
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

#include "tests/fault/fault_models.h"
#include "tests/support/checkpoint_state.h"

namespace loom::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

constexpr const char* kPhases[] = {"data", "fsync", "rename", "dirsync", "latest", "latest-rename"};
constexpr int kPauseMs = 500;   // long beside the test's 10 ms polling, even on a loaded machine

// The step a resume started from and the checkpoint it read: "resumed from PATH after step
// N" in its stderr; {-1, ""} if none.
struct Resumed {
  int64_t step = -1;
  std::string path;
};
Resumed resumed_from(const std::string& err) {
  const std::string key = "resumed from ", after = " after step ";
  const size_t at = err.find(key);
  if (at == std::string::npos) return {};
  const size_t s = err.find(after, at);
  if (s == std::string::npos) return {};
  return {std::stoll(err.substr(s + after.size())), err.substr(at + key.size(), s - at - key.size())};
}

// The n-th (from 1) "loom fault injection: paused at PHASE of WHAT (pid PID)" line of `err`:
// the pid and WHAT; pid 0 if there are fewer lines.
struct Pause {
  pid_t pid = 0;
  std::string what;
};
Pause nth_pause(const std::string& err, const std::string& phase, int n) {
  const std::string key = "loom fault injection: paused at " + phase + " of ";
  size_t at = 0;
  for (int i = 0; i < n; ++i) {
    at = err.find(key, i == 0 ? 0 : at + 1);
    if (at == std::string::npos) return {};
  }
  const size_t eol = err.find('\n', at);
  const size_t pid = err.rfind(" (pid ", eol);
  if (eol == std::string::npos || pid == std::string::npos || pid < at) return {};
  return {static_cast<pid_t>(std::stol(err.substr(pid + 6))), err.substr(at + key.size(), pid - at - key.size())};
}

// The step of a checkpoint path ".../step_00000012.h5"; -1 if it is not named so.
int64_t step_of(const std::string& path) {
  const size_t at = path.rfind("step_");
  return at == std::string::npos ? -1 : std::stoll(path.substr(at + 5));
}

// Steps done according to metrics.jsonl (its largest "step"); 0 before the first.
int64_t steps_done(const std::string& run_dir) {
  const std::map<int64_t, double> l = step_losses(run_dir);
  return l.empty() ? 0 : l.rbegin()->first + 1;
}

struct Reference {
  int64_t steps = 0;
  std::vector<std::vector<float>> state;
  std::map<int64_t, double> losses;
  std::vector<std::string> outputs;
  nlohmann::json curve;
  std::chrono::milliseconds step_time{};
};

// The uninterrupted run both kill plans compare with, in `ref_run`.
void run_reference(const KillJob& job, int np, const std::string& ref_run, Reference* want) {
  const auto t0 = std::chrono::steady_clock::now();
  const RunResult ref = run(job.command(np, ref_run, "", {}), 300s);
  ASSERT_EQ(ref.status, 0) << ref.err;
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  want->steps = final_step(ref_run);
  ASSERT_GE(want->steps, 4 * job.every) << "too few checkpoints to kill between:\n" << ref.err;
  want->state = checkpoint_state(final_checkpoint(ref_run));
  want->losses = step_losses(ref_run);
  ASSERT_EQ(want->losses.size(), size_t(want->steps));
  for (const std::string& f : job.outputs) want->outputs.push_back(read_file(ref_run + "/" + f));
  if (job.heldout_curve) {
    want->curve = nlohmann::json::parse(read_file(ref_run + "/eval.json"))["heldout"];
    ASSERT_GE(want->curve.size(), 2u);
  }
  want->step_time = took / want->steps;   // an upper bound: start-up included
  std::printf("np=%d uninterrupted run: %lld steps in %lld ms\n", np, static_cast<long long>(want->steps),
              static_cast<long long>(took.count()));
}

// Kills one rank at a random instant inside a random step after the first checkpoint,
// before the last.
void kill_in_a_random_step(Process& p, const KillJob& job, const Reference& want, const std::string& run_dir,
                           std::mt19937& gen, const std::string& what) {
  const int64_t step = std::uniform_int_distribution<int64_t>(job.every + 1, want.steps - 2)(gen);
  ASSERT_TRUE(wait_until([&] { return steps_done(run_dir) >= step && fs::exists(run_dir + "/checkpoints/latest"); },
                         120s, &p))
      << what << ": step " << step << " never came\n" << p.err();
  const auto fraction = std::uniform_int_distribution<int64_t>(0, want.step_time.count())(gen);
  std::this_thread::sleep_for(std::chrono::milliseconds(fraction));   // a random instant, on purpose
  ASSERT_TRUE(p.running()) << what << ": the run ended before the kill";
  kill_one_rank(p, "loom", gen);
}

// The resumed run in `run_dir` (resumed after step `from`, -1 for a fresh start) ended as
// the uninterrupted one: state, losses from `from` on, outputs and held-out curve.
void expect_ends_as_reference(const KillJob& job, const Reference& want, const std::string& run_dir, int64_t from,
                              const std::string& what) {
  expect_equal_state(checkpoint_state(final_checkpoint(run_dir)), want.state, what);
  const std::map<int64_t, double> got = step_losses(run_dir);
  for (int64_t s = std::max<int64_t>(from, 0); s < want.steps; ++s) {
    ASSERT_TRUE(got.count(s)) << what << ": no metrics for step " << s;
    EXPECT_EQ(got.at(s), want.losses.at(s)) << what << ", step " << s;
  }
  for (size_t f = 0; f < job.outputs.size(); ++f)
    EXPECT_EQ(read_file(run_dir + "/" + job.outputs[f]), want.outputs[f]) << what << ": " << job.outputs[f];
  // The held-out curve before the kill came back from the checkpoint: the whole curve
  // equals the uninterrupted run's, value for value.
  if (job.heldout_curve) {
    EXPECT_EQ(nlohmann::json::parse(read_file(run_dir + "/eval.json"))["heldout"], want.curve) << what;
  }
}

}  // namespace

KillJob::Command train_command(const std::string& config, const std::vector<std::string>& base_sets) {
  return [config, base_sets](int np, const std::string& run_dir, const std::string& resume,
                             const std::vector<std::string>& sets) {
    std::vector<std::string> args = {"train", config, "--set", "run.dir=" + run_dir};
    for (const std::vector<std::string>* list : {&base_sets, &sets})
      for (const std::string& s : *list) args.insert(args.end(), {"--set", s});
    if (!resume.empty()) args.insert(args.end(), {"--resume", resume});
    return loom_cmd(np, args);
  };
}

void expect_twenty_kills_resume_bit_for_bit(const KillJob& job, int np, const TempDir& dir) {
  Reference want;
  ASSERT_NO_FATAL_FAILURE(run_reference(job, np, dir.file("ref" + std::to_string(np)), &want));

  std::mt19937 gen(20261206u + static_cast<unsigned>(np));
  int inside = 0;
  for (int i = 0; i < 20; ++i) {
    const bool aimed = i < 6, at_load = i == 6, early = i == 7;
    const std::string what = "np " + std::to_string(np) + " kill " + std::to_string(i);
    const std::string run_dir = dir.file("kill" + std::to_string(np) + "_" + std::to_string(i));
    const std::string ckpts = run_dir + "/checkpoints";
    const int write = 2 + static_cast<int>(gen() % 4);   // a write after the first committed
    std::string latest_at_death, aimed_at;
    std::vector<std::string> committed_at_death;   // step_*.h5 files when the job died
    {
      std::vector<std::string> env;
      if (aimed)
        env = {"LOOM_FAULT_CHECKPOINT_PAUSE_MS=" + std::to_string(kPauseMs),
               std::string("LOOM_FAULT_CHECKPOINT_PHASE=") + kPhases[i]};
      Process p(job.command(np, run_dir, "", {}), env);
      if (aimed) {
        Pause writer;
        ASSERT_TRUE(wait_until([&] { return (writer = nth_pause(p.err(), kPhases[i], write)).pid != 0; }, 120s, &p))
            << what << ": no pause at " << kPhases[i] << " of write " << write << "\n" << p.err();
        ::kill(writer.pid, SIGKILL);
        aimed_at = writer.what;
      } else if (early) {
        // A random instant from the launch on, in the first half of the run: start-up, the
        // corpus, vocabulary or co-occurrence stages, MPI_Init included.
        const auto when = std::uniform_int_distribution<int64_t>(0, want.step_time.count() * want.steps / 2)(gen);
        std::this_thread::sleep_for(std::chrono::milliseconds(when));   // a random instant, on purpose
        kill_one_rank(p, "loom", gen);
      } else {
        ASSERT_NO_FATAL_FAILURE(kill_in_a_random_step(p, job, want, run_dir, gen, what));
      }
      // Only the early kill can fall inside MPI_Init (Note on wait_for_killed_job).
      ASSERT_TRUE(wait_for_killed_job(p, "loom", 60s,
                                      early ? MpirunTeardownHang::kToleratedOpenMpi41Race : MpirunTeardownHang::kFailure))
          << what;
      expect_nothing_left(run_dir, what);
      std::error_code ec;
      for (const auto& e : fs::directory_iterator(ckpts, ec))
        if (e.path().extension() == ".h5") committed_at_death.push_back(e.path().string());
      if (fs::exists(ckpts + "/latest")) {
        latest_at_death = read_file(ckpts + "/latest");
        latest_at_death = ckpts + "/" + latest_at_death.substr(0, latest_at_death.find('\n'));
      }
      const std::string unfinished = unfinished_checkpoint_write(ckpts);
      if (aimed) {
        EXPECT_FALSE(unfinished.empty()) << what << ": killed paused at " << kPhases[i]
                                         << ", yet no checkpoint write is unfinished";
        inside += unfinished.empty() ? 0 : 1;
        std::printf("%s (at %s of %s): %s\n", what.c_str(), kPhases[i], fs::path(aimed_at).filename().c_str(), unfinished.c_str());
      }
    }
    if (at_load) {   // kill the resume itself while it loads, then resume again
      Process p(job.command(np, run_dir, "auto", {}), {"LOOM_FAULT_RESUME_PAUSE_MS=" + std::to_string(kPauseMs)});
      Pause loader;
      ASSERT_TRUE(wait_until([&] { return (loader = nth_pause(p.err(), "resume", 1)).pid != 0; }, 120s, &p))
          << what << ": the resume never paused in its load\n" << p.err();
      ::kill(loader.pid, SIGKILL);
      ASSERT_TRUE(wait_for_killed_job(p, "loom", 60s, MpirunTeardownHang::kFailure)) << what << " (resume)";
      expect_nothing_left(run_dir, what + " (resume)");
      std::printf("%s: killed the resume while it loaded %s\n", what.c_str(), latest_at_death.c_str());
    }
    const RunResult r = run(job.command(np, run_dir, "auto", {}), 300s);
    ASSERT_FALSE(r.timed_out) << what << ": " << r.err;
    ASSERT_EQ(r.status, 0) << what << ": resume exited " << r.status << ":\n" << r.err;
    const Resumed from = resumed_from(r.err);
    if (!aimed) {
      std::printf("%s (%s): %s\n", what.c_str(), early ? "from the launch on" : "random",
                  from.step < 0 ? "started fresh" : ("resumed after step " + std::to_string(from.step)).c_str());
    }
    if (!latest_at_death.empty()) {
      EXPECT_EQ(from.path, latest_at_death) << what << ": not resumed from the checkpoint latest named\n" << r.err;
    } else if (committed_at_death.empty()) {   // the early kill, before any checkpoint: a fresh start that says so
      EXPECT_EQ(from.step, -1) << what << "\n" << r.err;
      EXPECT_NE(r.err.find("starting fresh"), std::string::npos) << what << "\n" << r.err;
    } else {   // the early kill between the first checkpoint's rename and its `latest`
      EXPECT_NE(std::find(committed_at_death.begin(), committed_at_death.end(), from.path), committed_at_death.end())
          << what << ": resumed from " << from.path << ", not a checkpoint complete when the job died\n" << r.err;
    }
    if (aimed) {
      EXPECT_LT(from.step, step_of(aimed_at)) << what << ": killed inside the write of " << aimed_at << "\n" << r.err;
    }
    if (!early) {
      EXPECT_GE(from.step, job.every) << what << "\n" << r.err;
    }
    ASSERT_NO_FATAL_FAILURE(expect_ends_as_reference(job, want, run_dir, from.step, what));
    if (!::testing::Test::HasFailure()) fs::remove_all(run_dir);
  }
  EXPECT_EQ(inside, 6) << "kills aimed inside a checkpoint write that left it unfinished";
}

void expect_random_kills_resume_bit_for_bit(const KillJob& job, int np, int kills, const TempDir& dir) {
  Reference want;
  ASSERT_NO_FATAL_FAILURE(run_reference(job, np, dir.file("rref" + std::to_string(np)), &want));
  std::mt19937 gen(20261207u + static_cast<unsigned>(np));
  for (int i = 0; i < kills; ++i) {
    const std::string what = "np " + std::to_string(np) + " random kill " + std::to_string(i);
    const std::string run_dir = dir.file("rkill" + std::to_string(np) + "_" + std::to_string(i));
    const std::string ckpts = run_dir + "/checkpoints";
    std::string latest_at_death;
    {
      Process p(job.command(np, run_dir, "", {}));
      ASSERT_NO_FATAL_FAILURE(kill_in_a_random_step(p, job, want, run_dir, gen, what));
      ASSERT_TRUE(wait_for_killed_job(p, "loom", 60s, MpirunTeardownHang::kFailure)) << what;
      expect_nothing_left(run_dir, what);
      latest_at_death = read_file(ckpts + "/latest");
      latest_at_death = ckpts + "/" + latest_at_death.substr(0, latest_at_death.find('\n'));
    }
    const RunResult r = run(job.command(np, run_dir, "auto", {}), 300s);
    ASSERT_FALSE(r.timed_out) << what << ": " << r.err;
    ASSERT_EQ(r.status, 0) << what << ": resume exited " << r.status << ":\n" << r.err;
    const Resumed from = resumed_from(r.err);
    std::printf("%s: resumed after step %lld\n", what.c_str(), static_cast<long long>(from.step));
    EXPECT_EQ(from.path, latest_at_death) << what << ": not resumed from the checkpoint latest named\n" << r.err;
    EXPECT_GE(from.step, job.every) << what << "\n" << r.err;
    ASSERT_NO_FATAL_FAILURE(expect_ends_as_reference(job, want, run_dir, from.step, what));
    if (!::testing::Test::HasFailure()) fs::remove_all(run_dir);
  }
}

void expect_resume_at_other_world_sizes(const KillJob& job, const TempDir& dir) {
  const std::string ref_run = dir.file("ws_ref");
  const RunResult ref = run(job.command(2, ref_run, "", {"checkpoint.keep_every_steps=" + std::to_string(job.every)}), 300s);
  ASSERT_EQ(ref.status, 0) << ref.err;
  const std::map<int64_t, double> want = step_losses(ref_run);
  ASSERT_EQ(want.size(), size_t(job.steps));
  const nlohmann::json want_eval = nlohmann::json::parse(read_file(ref_run + "/eval.json"));
  constexpr int64_t kFrom = 12;
  const std::string ckpt = ref_run + "/checkpoints/step_00000012.h5";
  ASSERT_TRUE(fs::exists(ckpt));
  for (int np : {1, 3}) {
    const std::string run_dir = dir.file("ws_to" + std::to_string(np));
    const RunResult r = run(job.command(np, run_dir, ckpt, {}), 300s);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(resumed_from(r.err).step, kFrom) << r.err;
    EXPECT_NE(r.err.find("written by 2 rank(s), now " + std::to_string(np)), std::string::npos) << r.err;
    const std::map<int64_t, double> got = step_losses(run_dir);
    ASSERT_FALSE(got.empty());
    EXPECT_EQ(got.begin()->first, kFrom);
    EXPECT_EQ(got.size(), size_t(job.steps - kFrom));
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
    for (const std::string& key : job.eval_keys) {
      const double a = e[key].get<double>(), b = want_eval[key].get<double>();
      EXPECT_LE(std::abs(a - b), 1e-5 * b) << key << ": " << a << " vs " << b;
    }
    EXPECT_EQ(final_step(run_dir), job.steps);
  }
}

}  // namespace loom::test
