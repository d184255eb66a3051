// Fault tests on the real `loom` binary under mpirun: a stop signal to one rank stops all
// ranks at the same step; a stalled rank trips the watchdog (exit 3, op and rank named);
// a SIGKILLed rank ends the job promptly. After each, no process of the job is left (Note
// [No process left behind] in tests/support/test_support.h).
#include <gtest/gtest.h>
#include <signal.h>

#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/test_support.h"

namespace loom::test {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> mpi_selftest(int np, const std::string& run_dir, std::vector<std::string> sets) {
  std::vector<std::string> cmd = mpirun_prefix(np);
  cmd.insert(cmd.end(), {loom_binary(), "selftest", "--set", "run.dir=" + run_dir, "--set",
                         "selftest.max_bytes=65536", "--set", "progress.interval_s=0.5"});
  for (const std::string& s : sets) {
    cmd.push_back("--set");
    cmd.push_back(s);
  }
  return cmd;
}

// Waits until `n` loom ranks run under the mpirun process `p`; returns their pids.
std::vector<pid_t> wait_for_ranks(Process& p, size_t n) {
  std::vector<pid_t> ranks;
  wait_until([&] { return (ranks = descendants_named(p.pid(), "loom")).size() >= n; }, 60s, &p);
  return ranks;
}

// Waits until every rank is inside the step loop: rank 0 has written the metrics line of
// step 0, which ends with collectives that every rank entered after installing its stop
// handlers (Note [Wait for the event, not for a time]).
bool wait_for_step_loop(Process& p, const std::string& run_dir) {
  return wait_until([&] { return read_file(run_dir + "/metrics.jsonl").find('\n') != std::string::npos; }, 120s, &p);
}

class StopSignal : public ::testing::TestWithParam<std::tuple<int, int>> {};

TEST_P(StopSignal, OneRankSignalledAllStopAtTheSameStep) {
  auto [np, sig] = GetParam();
  TempDir dir;
  Process job(mpi_selftest(np, dir.file("run"), {"selftest.steps=100000", "selftest.step_sleep_ms=20"}));
  std::vector<pid_t> ranks = wait_for_ranks(job, size_t(np));
  ASSERT_EQ(ranks.size(), size_t(np)) << job.err();
  ASSERT_TRUE(wait_for_step_loop(job, dir.file("run"))) << job.err();
  kill(ranks.back(), sig);                         // one rank only, not mpirun
  ASSERT_TRUE(job.wait_for(60s)) << "job did not stop:\n" << job.err();
  expect_nothing_left(dir.path(), "the stopped job");   // Note [No process left behind]
  std::string err = job.err();
  EXPECT_EQ(job.exit_status(), 128 + sig) << err;
  std::regex stopped(R"(\[r(\d+)/\d+\]\[selftest\] stop requested \(signal (\d+)\): all ranks stopped after step (\d+))");
  std::set<int> seen_ranks;
  std::set<std::string> steps;
  for (std::sregex_iterator it(err.begin(), err.end(), stopped), end; it != end; ++it) {
    seen_ranks.insert(std::stoi((*it)[1]));
    EXPECT_EQ(std::stoi((*it)[2]), sig);
    steps.insert((*it)[3]);
  }
  EXPECT_EQ(seen_ranks.size(), size_t(np)) << err;
  EXPECT_EQ(steps.size(), 1u) << "ranks stopped at different steps:\n" << err;
}

INSTANTIATE_TEST_SUITE_P(Signals, StopSignal,
                         ::testing::Values(std::make_tuple(2, SIGTERM), std::make_tuple(3, SIGUSR1),
                                           std::make_tuple(2, SIGINT)));

TEST(Watchdog, StalledRankEndsTheJobWithStatus3NamingOpAndRank) {
  TempDir dir;
  auto start = std::chrono::steady_clock::now();
  RunResult r = run(mpi_selftest(3, dir.file("run"),
                                 {"selftest.steps=1000", "selftest.stall_rank=1", "selftest.stall_step=5",
                                  "selftest.stall_seconds=600", "comm.timeout_s=4"}),
                    120s);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  ASSERT_FALSE(r.timed_out) << r.err;
  expect_nothing_left(dir.path(), "the job the watchdog ended");
  EXPECT_EQ(r.status, 3) << r.out << r.err;
  EXPECT_LT(took, 60.0);
  EXPECT_NE(r.err.find("allreduce"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("step 5"), std::string::npos) << r.err;
  std::regex missing(R"(rank 1 \(last entered #\d+\) did not arrive)");
  EXPECT_TRUE(std::regex_search(r.err, missing)) << "rank 1 not named as missing:\n" << r.err;
}

TEST(Kill, SigkilledRankEndsTheWholeJobPromptly) {
  TempDir dir;
  Process job(mpi_selftest(3, dir.file("run"), {"selftest.steps=100000", "selftest.step_sleep_ms=10"}));
  std::vector<pid_t> ranks = wait_for_ranks(job, 3);
  ASSERT_EQ(ranks.size(), 3u) << job.err();
  ASSERT_TRUE(wait_for_step_loop(job, dir.file("run"))) << job.err();
  kill(ranks[1], SIGKILL);
  // In the step loop, long after MPI_Init: no teardown race to tolerate.
  ASSERT_TRUE(wait_for_killed_job(job, "loom", 60s, MpirunTeardownHang::kFailure));
  expect_nothing_left(dir.path(), "the job whose rank was killed");
  EXPECT_NE(job.exit_status(), 0);
  // No rank is left behind: each is gone (or a zombie) within a few seconds of mpirun's
  // exit (a rank that mpirun killed may still be in its exit path at that instant).
  for (pid_t p : ranks) {
    auto gone = [p] {
      return kill(p, 0) != 0 || read_file("/proc/" + std::to_string(p) + "/stat").find(" Z ") != std::string::npos;
    };
    EXPECT_TRUE(wait_until(gone, 10s)) << "rank " << p << " still alive: " << describe_descendants(p);
  }
}

// Note [No process left behind]: the check finds a live process by its directory as a whole
// path in its command line, never a process of another directory whose path only begins
// so (a test beside it), and nothing once the process is gone.
TEST(NothingLeft, FindsALiveProcessByItsWholeDirectoryOnly) {
  TempDir dir;
  const std::string mine = dir.file("run"), other = dir.file("run2");
  // "; true" keeps sh from replacing itself with sleep: its command line holds run.dir.
  Process a({"sh", "-c", "sleep 120; true", "sh", "run.dir=" + mine});
  Process b({"sh", "-c", "sleep 120; true", "sh", "run.dir=" + other});
  const std::string a_line = std::to_string(a.pid()) + " ", b_line = std::to_string(b.pid()) + " ";
  auto listed = [](const std::string& list, const std::string& line) {
    return ("\n" + list).find("\n" + line) != std::string::npos;
  };
  // Both must have exec'd sh (before that, a forked child shows this test's command line).
  ASSERT_TRUE(wait_until([&] { return listed(processes_holding(mine), a_line); }, 30s)) << processes_holding(mine);
  ASSERT_TRUE(wait_until([&] { return listed(processes_holding(other), b_line); }, 30s)) << processes_holding(other);
  EXPECT_FALSE(listed(processes_holding(mine), b_line)) << "another directory's process:\n" << processes_holding(mine);
  EXPECT_FALSE(listed(processes_holding(other), a_line)) << processes_holding(other);
  a.signal_group(SIGKILL);
  ASSERT_TRUE(a.wait_for(30s));
  EXPECT_EQ(processes_holding(mine), "");
  b.signal_group(SIGKILL);
  ASSERT_TRUE(b.wait_for(30s));
  expect_nothing_left(other, "the killed sh");
}

}  // namespace
}  // namespace loom::test
