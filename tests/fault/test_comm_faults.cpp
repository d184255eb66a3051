// How a job of comm_loop ends when something goes wrong (label: fault):
//  - a rank stalls (sleeps, or is SIGSTOPped): the watchdog ends the job within its
//    deadline plus a few seconds, mpirun exits 3, and the report names the operation and
//    the rank that did not arrive;
//  - a rank is SIGKILLed: the whole job ends promptly with a non-zero status;
//  - a launcher announces 2 ranks while MPI sees 1: a clear error, non-zero exit.
// After a job whose rank was stopped or killed, no process of it is left (Note [No process
// left behind] in tests/support/test_support.h).
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "tests/support/test_support.h"

namespace loom::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

std::vector<std::string> comm_loop(int np, std::vector<std::string> args) {
  std::vector<std::string> argv = mpirun_prefix(np);
  argv.push_back(LOOM_COMM_LOOP);
  argv.insert(argv.end(), args.begin(), args.end());
  return argv;
}

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

// Waits until every rank has written its pid; returns them by rank.
std::vector<pid_t> wait_for_pids(const TempDir& dir, int np, Process& job) {
  std::vector<pid_t> pids;
  auto all_written = [&] {
    pids.clear();
    for (int r = 0; r < np; ++r) {
      std::string text = read_file(dir.file("rank" + std::to_string(r) + ".pid"));
      if (text.empty()) return false;
      pids.push_back(static_cast<pid_t>(std::stol(text)));
    }
    return true;
  };
  if (!wait_until(all_written, 120s, &job)) return {};
  return pids;
}

std::string describe(const RunResult& r) {
  return "status " + std::to_string(r.status) + (r.timed_out ? " (timed out)" : "") +
         "\n--- stdout\n" + r.out + "\n--- stderr\n" + r.err;
}

TEST(CommFaults, HealthyLoopsFinish) {
  for (int np : {2, 3}) {
    RunResult r = run(comm_loop(np, {"--steps", "30", "--timeout-ms", "20000"}), 120s);
    EXPECT_EQ(r.status, 0) << describe(r);
    EXPECT_NE(r.out.find("30 steps done"), std::string::npos) << describe(r);
  }
}

// A rank sleeps at step 5 for far longer than the 2 s deadline.
void expect_watchdog_names_sleeper(int np, int sleeper) {
  auto start = Clock::now();
  RunResult r = run(comm_loop(np, {"--steps", "20", "--timeout-ms", "2000", "--stall-rank",
                                   std::to_string(sleeper), "--stall-at", "5",
                                   "--stall-seconds", "120"}),
                    60s);
  double took = seconds_since(start);
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, kExitWatchdog) << describe(r);
  EXPECT_LT(took, 2.0 + 15.0) << describe(r);
  EXPECT_NE(r.err.find("[watchdog] error: watchdog: allreduce #"), std::string::npos) << describe(r);
  EXPECT_NE(r.err.find("at step 5"), std::string::npos) << describe(r);
  EXPECT_NE(r.err.find("did not finish within 2000 ms"), std::string::npos) << describe(r);
  EXPECT_NE(r.err.find("rank " + std::to_string(sleeper) + " (last entered #"), std::string::npos)
      << describe(r);
  EXPECT_NE(r.err.find("did not arrive"), std::string::npos) << describe(r);
}

TEST(CommFaults, WatchdogNamesASleepingRankOf3) { expect_watchdog_names_sleeper(3, 2); }
TEST(CommFaults, WatchdogNamesASleepingRankOf2) { expect_watchdog_names_sleeper(2, 1); }
// Rank 0 hosts the arrival table: it must still be readable while rank 0 sleeps.
TEST(CommFaults, WatchdogNamesASleepingRank0) { expect_watchdog_names_sleeper(3, 0); }

// Starts a long loop, then sends `sig` to rank `victim` once every rank is running.
struct SignalledJob {
  RunResult result;
  double seconds_after_signal = 0;
};

SignalledJob signal_rank_mid_loop(int np, int victim, int sig, const std::string& timeout_ms) {
  TempDir pids;
  Process job(comm_loop(np, {"--steps", "1000000", "--sleep-ms", "5", "--timeout-ms", timeout_ms,
                             "--pid-dir", pids.path()}));
  std::vector<pid_t> ranks = wait_for_pids(pids, np, job);
  SignalledJob out;
  if (ranks.empty()) {
    ADD_FAILURE() << "the ranks never wrote their pids\n" << job.err();
    return out;
  }
  std::vector<pid_t> mine = descendants_named(job.pid(), "comm_loop");
  EXPECT_NE(std::find(mine.begin(), mine.end(), ranks[static_cast<size_t>(victim)]), mine.end())
      << "rank " << victim << "'s pid is not a comm_loop under this mpirun";
  // Well inside the loop: rank 0 marks step 10, which every rank's collectives reached.
  EXPECT_TRUE(wait_until([&] { return std::filesystem::exists(pids.file("looping")); }, 120s, &job)) << job.err();
  auto start = Clock::now();
  kill(ranks[static_cast<size_t>(victim)], sig);
  bool ended = job.wait_for(60s);
  out.seconds_after_signal = seconds_since(start);
  if (!ended) {
    kill(ranks[static_cast<size_t>(victim)], SIGCONT);
    job.signal_group(SIGKILL);
    job.wait_for(10s);
  }
  out.result.timed_out = !ended;
  out.result.status = job.exit_status();
  out.result.out = job.out();
  out.result.err = job.err();
  // Every process of the job holds --pid-dir PIDS in its command line (Note [No process
  // left behind]); a rank still stopped or running after mpirun ended is a failure, then
  // ended here (ours, by pid) so that it does not outlive the test.
  expect_nothing_left(pids.path(), "np " + std::to_string(np) + ", " + strsignal(sig) + " to rank " +
                                       std::to_string(victim));
  const std::string left = "\n" + processes_holding(pids.path());
  for (pid_t rank : ranks) {
    if (left.find("\n" + std::to_string(rank) + " ") != std::string::npos) {
      kill(rank, SIGCONT);
      kill(rank, SIGKILL);
    }
  }
  return out;
}

TEST(CommFaults, WatchdogNamesAStoppedRank) {
  for (int np : {2, 3}) {
    int victim = np - 1;
    SignalledJob job = signal_rank_mid_loop(np, victim, SIGSTOP, "2000");
    const RunResult& r = job.result;
    ASSERT_FALSE(r.timed_out) << "np " << np << ": the job hung\n" << describe(r);
    EXPECT_EQ(r.status, kExitWatchdog) << "np " << np << "\n" << describe(r);
    EXPECT_LT(job.seconds_after_signal, 2.0 + 15.0) << describe(r);
    EXPECT_NE(r.err.find("watchdog: "), std::string::npos) << describe(r);
    EXPECT_TRUE(r.err.find("allreduce #") != std::string::npos ||
                r.err.find("broadcast #") != std::string::npos) << describe(r);
    EXPECT_NE(r.err.find("rank " + std::to_string(victim) + " (last entered #"), std::string::npos)
        << describe(r);
    // Its heartbeat stopped with it: the report says so (a partner held in an earlier
    // collective by it is "alive", never the one named unresponsive).
    EXPECT_NE(r.err.find("unresponsive"), std::string::npos) << describe(r);
  }
}

// The stopped rank has entered the collective, like every other rank: the arrival
// sequence numbers cannot tell, its stopped heartbeat does.
TEST(CommFaults, WatchdogNamesARankStoppedInsideACollective) {
  for (int np : {2, 3}) {
    int victim = np - 1;
    auto start = Clock::now();
    RunResult r = run(comm_loop(np, {"--steps", "20", "--timeout-ms", "2000", "--freeze-rank",
                                     std::to_string(victim), "--freeze-at", "6"}),
                      60s);
    ASSERT_FALSE(r.timed_out) << "np " << np << ": the job hung\n" << describe(r);
    EXPECT_EQ(r.status, kExitWatchdog) << describe(r);
    EXPECT_LT(seconds_since(start), 2.0 + 15.0) << describe(r);
    EXPECT_NE(r.err.find("at step 6"), std::string::npos) << describe(r);
    EXPECT_NE(r.err.find("rank " + std::to_string(victim) + " (last entered #"),
              std::string::npos) << describe(r);
    EXPECT_NE(r.err.find("entered it but is unresponsive"), std::string::npos) << describe(r);
    EXPECT_EQ(r.err.find("did not arrive"), std::string::npos) << describe(r);
  }
}

TEST(CommFaults, StoppedRank0IsReportedNotHung) {
  SignalledJob job = signal_rank_mid_loop(3, 0, SIGSTOP, "2000");
  const RunResult& r = job.result;
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, kExitWatchdog) << describe(r);
  EXPECT_LT(job.seconds_after_signal, 2.0 + 15.0) << describe(r);
  // Either the table was readable (shared memory) and names rank 0, or the report says
  // that rank 0, which hosts it, is unresponsive.
  EXPECT_TRUE(r.err.find("rank 0 (last entered #") != std::string::npos ||
              r.err.find("rank 0, is unresponsive") != std::string::npos) << describe(r);
  EXPECT_NE(r.err.find("unresponsive"), std::string::npos) << describe(r);
}

TEST(CommFaults, KilledRankEndsTheJobPromptly) {
  for (int np : {2, 3}) {
    // A long watchdog deadline: ending the job is MPI's job here, not the watchdog's.
    SignalledJob job = signal_rank_mid_loop(np, 1, SIGKILL, "600000");
    const RunResult& r = job.result;
    ASSERT_FALSE(r.timed_out) << "np " << np << ": the job hung\n" << describe(r);
    EXPECT_NE(r.status, 0) << describe(r);
    EXPECT_LT(job.seconds_after_signal, 30.0) << describe(r);
  }
}

TEST(CommFaults, SrunWithoutPmiIsAClearError) {
  unsetenv("OMPI_COMM_WORLD_SIZE");  // not under mpirun: the child inherits this
  unsetenv("PMI_SIZE");
  unsetenv("PMIX_SIZE");
  RunResult r = run({LOOM_COMM_LOOP, "--steps", "1"}, 60s,
                    {"SLURM_STEP_ID=0", "SLURM_PROCID=0", "SLURM_STEP_NUM_TASKS=2"});
  ASSERT_FALSE(r.timed_out) << describe(r);
  EXPECT_EQ(r.status, kExitError) << describe(r);
  EXPECT_NE(r.err.find("srun started 2 tasks but MPI sees a world of 1"), std::string::npos)
      << describe(r);
  EXPECT_NE(r.err.find("srun --mpi=pmix"), std::string::npos) << describe(r);
}

}  // namespace
}  // namespace loom::test
