// `loom mpirun` (launch/cli/cli_mpirun.cpp, Note [Why loom mpirun]) on the real binary,
// with real signals to a real `mpirun -np 2` job of `loom train`: SIGTERM, SIGINT and
// SIGUSR1 to the launcher give 143, 130 and 138, a stop checkpoint that `latest` names, a
// `--resume auto` (through the launcher too) that ends bit for bit where an uninterrupted run
// does, and no process left behind; a second signal ends the job at once; a rank's error
// stays 1; mpirun killed is 128 + its signal. The bare mpirun's own answer to SIGTERM (1,
// with the stop checkpoint written) is checked in tests/e2e/hostile_test.cpp (StopSignals).
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "tests/fault/fault_models.h"
#include "tests/support/checkpoint_state.h"
#include "tests/support/test_support.h"

namespace loom::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// Each stopped run pauses rank 0 this long in the `latest` phase of every checkpoint write
// (core/fault.h): the signal is sent on the first pause, so the stop falls early in the run,
// at step 2 or soon after, on any machine.
constexpr int kPauseMs = 1000;

// `loom mpirun` with the flags ctest gives mpirun (mpirun_prefix less the program), then
// `--` and `args` (a loom subcommand and its arguments).
std::vector<std::string> launched(int np, const std::vector<std::string>& args) {
  const std::vector<std::string> prefix = mpirun_prefix(np);
  std::vector<std::string> cmd = {loom_binary(), "mpirun"};
  cmd.insert(cmd.end(), prefix.begin() + 1, prefix.end());
  cmd.push_back("--");
  cmd.insert(cmd.end(), args.begin(), args.end());
  return cmd;
}

// `loom mpirun -np 2 ... -- train` of the model case in run_dir, then `more`; a few epochs
// more than model_case's one (GloVe 18 steps, word2vec 32), so that a stop at the first
// checkpoint's pause is far from the end.
std::vector<std::string> launched_train(const ModelCase& m, const std::string& run_dir,
                                        const std::vector<std::string>& more = {}) {
  std::vector<std::string> longer = {"--set", m.name == "glove" ? "glove.epochs=3" : "word2vec.epochs=2"};
  longer.insert(longer.end(), more.begin(), more.end());
  std::vector<std::string> args = train_cmd(m, 1, run_dir, longer);
  args.erase(args.begin());   // the binary: loom mpirun runs itself
  return launched(2, args);
}

// The step N of "all ranks stopped after step N"; -1 when the line is missing.
int64_t stopped_after(const std::string& err) {
  const std::string key = "all ranks stopped after step ";
  const size_t at = err.find(key);
  return at == std::string::npos ? -1 : std::stoll(err.substr(at + key.size()));
}

// mpirun, the launcher's child; 0 when it has none (yet, or any more).
pid_t mpirun_of(Process& launcher) {
  const std::vector<pid_t> children = child_pids(launcher.pid());
  return children.empty() ? 0 : children.front();
}

// Kills what a failed test leaves: mpirun runs in its own process group, which ~Process
// does not reach.
struct JobGuard {
  explicit JobGuard(Process& p) : launcher(p) {}
  ~JobGuard() {
    if (!launcher.running()) return;
    if (const pid_t m = mpirun_of(launcher); m > 0) ::kill(-m, SIGKILL);
  }
  Process& launcher;
};

// An uninterrupted run of each model, through loom mpirun (status 0 passes through), made
// once per test binary.
const std::string& reference_run(const std::string& model) {
  static std::map<std::string, TempDir> dirs;
  static std::map<std::string, std::string> done;
  if (done.count(model) != 0) return done[model];
  const std::string run_dir = dirs[model].file("run");
  const RunResult r = run(launched_train(model_case(model), run_dir), 300s);
  EXPECT_EQ(r.status, 0) << model << " reference run:\n" << r.err;
  EXPECT_EQ(r.err.find("loom mpirun:"), std::string::npos) << "the launcher spoke without a signal:\n" << r.err;
  std::printf("%s: the uninterrupted run ends after step %lld\n", model.c_str(),
              static_cast<long long>(final_step(run_dir)));
  return done[model] = run_dir;
}

struct StopCase {
  std::string model;
  int sig;
};

std::string signal_name(int sig) { return sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "SIGUSR1"; }

std::string case_name(const ::testing::TestParamInfo<StopCase>& info) {
  return info.param.model + "_" + signal_name(info.param.sig);
}

class StopUnderLoomMpirun : public ::testing::TestWithParam<StopCase> {};

// One signal to the launcher while training runs: the launcher exits 128 + that signal, the
// ranks stopped on the SIGUSR1 it passed on and wrote a stop checkpoint that `latest`
// names, and --resume auto through the launcher ends where the uninterrupted run ends.
TEST_P(StopUnderLoomMpirun, ExitsWithTheSignalsStatusAndResumesBitForBit) {
  const StopCase c = GetParam();
  const std::string name = signal_name(c.sig);
  const ModelCase m = model_case(c.model);
  const std::string& want = reference_run(c.model);
  ASSERT_FALSE(HasFatalFailure());
  const int64_t want_steps = final_step(want);
  TempDir dir;
  const std::string run_dir = dir.file("run");
  const std::string what = c.model + ", " + name + " to loom mpirun";
  int64_t stop = -1;
  {
    Process p(launched_train(m, run_dir),
              {"LOOM_FAULT_CHECKPOINT_PAUSE_MS=" + std::to_string(kPauseMs), "LOOM_FAULT_CHECKPOINT_PHASE=latest"});
    JobGuard guard(p);
    ASSERT_TRUE(wait_for_output(p, "loom fault injection: paused at latest", 120s)) << what << "\n" << p.err();
    p.signal(c.sig);
    ASSERT_TRUE(p.wait_for(120s)) << what << ": the job did not end; still running: " << describe_descendants(p.pid())
                                  << "\n" << p.err();
    const std::string err = p.err();
    EXPECT_EQ(p.exit_status(), 128 + c.sig) << what << "\n" << err;
    const std::string said = "loom mpirun: " + name + " received, asked the ranks to stop at the next step (SIGUSR1 to mpirun)";
    EXPECT_NE(err.find(said), std::string::npos) << what << "\n" << err;
    EXPECT_NE(err.find("stop requested (signal " + std::to_string(SIGUSR1) + ")"), std::string::npos) << what << "\n" << err;
    stop = stopped_after(err);
    ASSERT_GT(stop, 0) << what << ": no stop\n" << err;
    EXPECT_LT(stop, want_steps) << what << ": the run was over before the stop";
    const std::string wrote = "wrote " + run_dir + "/checkpoints/" + checkpoint_name(stop) + " after step " +
                              std::to_string(stop) + " (stop request";
    EXPECT_NE(err.find(wrote), std::string::npos) << what << ": expected '" << wrote << "' in\n" << err;
    EXPECT_EQ(final_step(run_dir), stop) << what << ": `latest` does not name the stop checkpoint\n" << err;
    std::printf("%s: exit %d, stopped after step %lld of %lld\n", what.c_str(), p.exit_status(),
                static_cast<long long>(stop), static_cast<long long>(want_steps));
  }
  expect_nothing_left(run_dir, what);

  const RunResult r = run(launched_train(m, run_dir, {"--resume", "auto"}), 300s);
  ASSERT_EQ(r.status, 0) << what << ", the resumed run:\n" << r.err;
  const std::string resumed = "resumed from " + run_dir + "/checkpoints/" + checkpoint_name(stop) + " after step " +
                              std::to_string(stop);
  EXPECT_NE(r.err.find(resumed), std::string::npos) << what << ": expected '" << resumed << "' in\n" << r.err;
  expect_equal_state(checkpoint_state(final_checkpoint(run_dir)), checkpoint_state(final_checkpoint(want)), what);
  if (m.vectors) {
    EXPECT_EQ(read_file(run_dir + "/vectors.txt"), read_file(want + "/vectors.txt")) << what;
  }
  expect_nothing_left(run_dir, what + ", the resumed run");
}

INSTANTIATE_TEST_SUITE_P(Signals, StopUnderLoomMpirun,
                         ::testing::Values(StopCase{"glove", SIGTERM}, StopCase{"glove", SIGINT},
                                           StopCase{"glove", SIGUSR1}, StopCase{"word2vec", SIGTERM}),
                         case_name);

// Rank 0 held at `latest` of its first checkpoint write (fault injection, Note [Fault
// injection points] in core/fault.h) far longer than any test waits: the job cannot stop
// cleanly, so what ends it is the launcher's hard stop or a kill.
const std::vector<std::string> kHeldInTheFirstWrite = {"LOOM_FAULT_CHECKPOINT_PAUSE_MS=100000",
                                                       "LOOM_FAULT_CHECKPOINT_PHASE=latest"};

// A second SIGINT is the hard stop: while rank 0 is held inside its first checkpoint write
// (the stop checkpoint cannot come), the launcher passes the second one on as SIGTERM to
// mpirun, which ends the job; the launcher still exits 130, and nothing is left running.
TEST(LoomMpirun, SecondSignalEndsTheJobAtOnce) {
  const ModelCase m = model_case("glove");
  TempDir dir;
  const std::string run_dir = dir.file("run");
  {
    Process p(launched_train(m, run_dir), kHeldInTheFirstWrite);
    JobGuard guard(p);
    ASSERT_TRUE(wait_for_output(p, "loom fault injection: paused at latest", 120s)) << p.err();
    p.signal(SIGINT);
    ASSERT_TRUE(wait_for_output(p, "loom mpirun: SIGINT received", 30s)) << p.err();
    const auto t0 = std::chrono::steady_clock::now();
    p.signal(SIGINT);
    ASSERT_TRUE(p.wait_for(60s)) << "the hard stop did not end the job; still running: "
                                 << describe_descendants(p.pid()) << "\n" << p.err();
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const std::string err = p.err();
    EXPECT_EQ(p.exit_status(), 130) << err;
    EXPECT_NE(err.find("loom mpirun: SIGINT again: ending the job now (SIGTERM to mpirun)"), std::string::npos) << err;
    EXPECT_EQ(stopped_after(err), -1) << "rank 0 was held in a checkpoint write, yet the ranks stopped cleanly:\n"
                                      << err;
    std::printf("hard stop: the job ended %.1f s after the second SIGINT, exit %d\n", seconds, p.exit_status());
  }
  expect_nothing_left(run_dir, "the hard stop");
}

// A rank's error through the launcher is mpirun's 1, untouched, and the launcher says nothing.
TEST(LoomMpirun, ARanksErrorStaysOne) {
  const ModelCase m = model_case("glove");
  TempDir dir;
  const std::string run_dir = dir.file("run"), missing = dir.file("no-such-corpus.txt");
  const RunResult r = run(launched_train(m, run_dir, {"--set", "corpus.synthetic=false", "--set",
                                                      "corpus.paths=[\"" + missing + "\"]"}), 120s);
  EXPECT_EQ(r.status, 1) << r.err;
  EXPECT_NE(r.err.find(missing), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("loom mpirun:"), std::string::npos) << r.err;
  expect_nothing_left(run_dir, "the run with a missing corpus");
}

// mpirun killed (SIGKILL, inside a checkpoint write) is 137 from the launcher, which says so;
// the ranks, in process groups of their own, end without mpirun.
TEST(LoomMpirun, MpirunKilledIsItsSignal) {
  const ModelCase m = model_case("glove");
  TempDir dir;
  const std::string run_dir = dir.file("run");
  {
    Process p(launched_train(m, run_dir), kHeldInTheFirstWrite);
    JobGuard guard(p);
    ASSERT_TRUE(wait_for_output(p, "loom fault injection: paused at latest", 120s)) << p.err();
    const pid_t mpirun = mpirun_of(p);
    ASSERT_GT(mpirun, 0) << describe_descendants(p.pid());
    ASSERT_EQ(::kill(mpirun, SIGKILL), 0);
    ASSERT_TRUE(p.wait_for(60s)) << describe_descendants(p.pid()) << "\n" << p.err();
    EXPECT_EQ(p.exit_status(), 137) << p.err();
    EXPECT_NE(p.err().find("loom mpirun: mpirun was killed by SIGKILL; exiting 137"), std::string::npos) << p.err();
  }
  expect_nothing_left(run_dir, "mpirun killed");
}

}  // namespace
}  // namespace loom::test
