// End to end: the `loom` binary as a user runs it — alone, under mpirun -np 2 and 3 —
// its CLI (--version, --help, config errors) and its outputs (config.toml, metrics.jsonl).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <unistd.h>

#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/device.h"
#include "tests/support/test_support.h"

namespace loom::test {
namespace {

using namespace std::chrono_literals;

std::vector<std::string> loom_cmd(std::vector<std::string> args) {
  args.insert(args.begin(), loom_binary());
  return args;
}

std::vector<std::string> mpi_loom(int np, const std::vector<std::string>& args) {
  std::vector<std::string> cmd = mpirun_prefix(np);
  cmd.push_back(loom_binary());
  cmd.insert(cmd.end(), args.begin(), args.end());
  return cmd;
}

std::vector<nlohmann::json> read_jsonl(const std::string& path) {
  std::vector<nlohmann::json> lines;
  std::istringstream in(read_file(path));
  std::string line;
  while (std::getline(in, line)) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

// Message sizes of `loom selftest` in elements of 8 bytes, cycled by step, written out from
// its description (launch/cli/selftest.cpp): 0, 1, 7, 1001, then powers of 4 from 4096
// below max_bytes / 8, then max_bytes / 8. A step moves 6 messages of that size per rank.
std::vector<int64_t> selftest_sizes(int64_t max_bytes) {
  const int64_t max_elems = max_bytes / 8;
  std::vector<int64_t> sizes{0, 1, 7, 1001};
  for (int64_t n = 4096; n < max_elems; n *= 4) sizes.push_back(n);
  sizes.push_back(max_elems);
  return sizes;
}

// What the run wrote, against what `steps` steps at `np` ranks must have done, rather than
// loom's own "passed": one metrics line per step in order, consistent step times, and the
// bytes of every step of every rank (items_per_s x time is the running total while the
// rate's window, 20 steps, still starts at the beginning); config.toml holds the run's keys.
void expect_selftest_outputs(const std::string& run_dir, int np, int64_t steps, int64_t max_bytes) {
  const std::vector<nlohmann::json> metrics = read_jsonl(run_dir + "/metrics.jsonl");
  ASSERT_EQ(metrics.size(), static_cast<size_t>(steps));
  const std::vector<int64_t> sizes = selftest_sizes(max_bytes);
  double total = 0, last_time = 0;
  for (size_t i = 0; i < metrics.size(); ++i) {
    const nlohmann::json& j = metrics[i];
    EXPECT_EQ(j["step"].get<int64_t>(), static_cast<int64_t>(i) + 1);   // steps done, from 1
    const double time = j["time"].get<double>();
    EXPECT_GE(time, last_time) << "step " << i;
    last_time = time;
    EXPECT_LE(j["step_seconds_min"].get<double>(), j["step_seconds_mean"].get<double>()) << "step " << i;
    EXPECT_LE(j["step_seconds_mean"].get<double>(), j["step_seconds_max"].get<double>()) << "step " << i;
    EXPECT_GE(j["slowest_rank"].get<int>(), 0) << "step " << i;
    EXPECT_LT(j["slowest_rank"].get<int>(), np) << "step " << i;
    total += static_cast<double>(np) * 48.0 * static_cast<double>(sizes[i % sizes.size()]);
    if (i < 20 && time > 0) {
      EXPECT_NEAR(j["items_per_s"].get<double>() * time, total, 1e-6 * total + 1e-6)
          << "bytes moved up to step " << i << " at " << np << " rank(s)";
    }
  }
  EXPECT_GT(total, 0.0);
  const std::string config = read_file(run_dir + "/config.toml");
  EXPECT_NE(config.find("steps = " + std::to_string(steps) + "\n"), std::string::npos) << config;
  EXPECT_NE(config.find("max_bytes = " + std::to_string(max_bytes) + "\n"), std::string::npos) << config;
  EXPECT_NE(config.find("dir = \"" + run_dir + "\"\n"), std::string::npos) << config;
}

// The rank table of `loom env` / the start of a run: one row per rank, on this host, local
// rank r/np, distinct pids.
void expect_rank_rows(const std::string& text, int np) {
  char host[256] = {};
  ASSERT_EQ(::gethostname(host, sizeof host - 1), 0);
  std::set<std::string> pids;
  for (int r = 0; r < np; ++r) {
    std::smatch m;
    // A row starts its line; in a log listing after the rank prefix ("[r0/2][env] ").
    const std::regex row("\n(?:\\[r[0-9]+/[0-9]+\\]\\[[a-z]+\\] )?" + std::to_string(r) + " +(\\S+) +0 +" + std::to_string(r) + "/" + std::to_string(np) +
                         " +([0-9]+) ");
    ASSERT_TRUE(std::regex_search(text, m, row)) << "no row for rank " << r << " in:\n" << text;
    EXPECT_EQ(m[1].str(), std::string(host)) << "rank " << r;
    pids.insert(m[2].str());
  }
  EXPECT_EQ(pids.size(), static_cast<size_t>(np)) << "ranks share a pid:\n" << text;
}

TEST(Cli, VersionNamesCommitBuildAndCuda) {
  RunResult r = run(loom_cmd({"--version"}), 30s);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("loom 0."), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("commit "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("build "), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("CUDA "), std::string::npos) << r.out;
}

TEST(Cli, HelpReadsLikeAManualPage) {
  for (const char* sub : {"selftest", "env", "config"}) {
    RunResult r = run(loom_cmd({sub, "--help"}), 30s);
    ASSERT_EQ(r.status, 0) << sub << ": " << r.err;
    EXPECT_NE(r.out.find("DESCRIPTION"), std::string::npos) << sub << ":\n" << r.out;
    EXPECT_NE(r.out.find("EXAMPLES"), std::string::npos) << sub << ":\n" << r.out;
    EXPECT_NE(r.out.find("EXIT STATUS"), std::string::npos) << sub << ":\n" << r.out;
  }
  RunResult bad = run(loom_cmd({"no-such-command"}), 30s);
  EXPECT_EQ(bad.status, 2);
}

TEST(Cli, ConfigDescribeListsEveryKey) {
  RunResult r = run(loom_cmd({"config", "--describe"}), 30s);
  ASSERT_EQ(r.status, 0) << r.err;
  for (const char* key : {"run.seed", "comm.timeout_s", "status.port", "progress.bar", "selftest.steps"})
    EXPECT_NE(r.out.find(key), std::string::npos) << key << " missing from:\n" << r.out;
}

TEST(Cli, ConfigErrorNamesKeyAndLineOnEveryLaunch) {
  TempDir dir;
  write_file(dir.file("bad.toml"), "[run]\nseed = 3\n\n[comm]\ntimeot_s = 5\n");
  RunResult alone = run(loom_cmd({"selftest", dir.file("bad.toml")}), 60s);
  EXPECT_EQ(alone.status, 2);
  EXPECT_NE(alone.err.find("timeot_s"), std::string::npos) << alone.err;
  EXPECT_NE(alone.err.find("bad.toml:5"), std::string::npos) << alone.err;
  EXPECT_NE(alone.err.find("comm.timeout_s"), std::string::npos) << "no suggestion: " << alone.err;
  // Under mpirun every rank refuses the config before MPI starts: no hang, status 2.
  RunResult two = run(mpi_loom(2, {"selftest", dir.file("bad.toml")}), 120s);
  EXPECT_FALSE(two.timed_out);
  EXPECT_EQ(two.status, 2) << two.out << two.err;
  RunResult set = run(loom_cmd({"config", "--set", "selftest.steps=0"}), 30s);
  EXPECT_EQ(set.status, 2);
  EXPECT_NE(set.err.find("selftest.steps"), std::string::npos) << set.err;
}

TEST(Selftest, SingletonPassesAndWritesItsRunDirectory) {
  TempDir dir;
  std::string run_dir = dir.file("run");
  RunResult r = run(loom_cmd({"selftest", "--set", "selftest.steps=12", "--set", "run.dir=" + run_dir,
                              "--set", "selftest.max_bytes=65536"}),
                    120s);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("passed: 12 steps"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("launcher       singleton"), std::string::npos) << r.err;
  expect_selftest_outputs(run_dir, 1, 12, 65536);
}

class SelftestRanks : public ::testing::TestWithParam<int> {};

TEST_P(SelftestRanks, PassesUnderMpirun) {
  int np = GetParam();
  TempDir dir;
  RunResult r = run(mpi_loom(np, {"selftest", "--set", "selftest.steps=20", "--set", "run.dir=" + dir.file("run"),
                                  "--set", "selftest.max_bytes=1048576"}),
                    300s);
  ASSERT_FALSE(r.timed_out) << r.err;
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("passed: 20 steps, every collective checked on " + std::to_string(np) + " rank(s)"),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("launcher       mpirun"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("world size     " + std::to_string(np)), std::string::npos) << r.err;
  expect_rank_rows(r.err, np);
  expect_selftest_outputs(dir.file("run"), np, 20, 1048576);
}

INSTANTIATE_TEST_SUITE_P(Np, SelftestRanks, ::testing::Values(2, 3));

TEST(Env, ListsEveryRankAndTheVersions) {
  RunResult r = run(mpi_loom(3, {"env"}), 120s);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("launcher       mpirun"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("world size     3"), std::string::npos) << r.out;
  expect_rank_rows(r.out, 3);
  for (const char* lib : {"MPI            Open MPI", "HDF5           1.", "NCCL", "CUDA runtime"})
    EXPECT_NE(r.out.find(lib), std::string::npos) << lib << " in:\n" << r.out;
  // The GPUs: one line each with name, memory and compute capability, or "no GPU" (this
  // test process sees what loom's rank 0 sees: same environment, same machine).
  if (cuda_device_count() == 0) {
    EXPECT_NE(r.out.find("GPUs           no GPU"), std::string::npos) << r.out;
  } else {
    EXPECT_NE(r.out.find("GPUs           " + std::to_string(cuda_device_count()) + " visible"), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("cuda:0  " + cuda_device_info(0).name), std::string::npos) << r.out;
    EXPECT_NE(r.out.find("compute capability"), std::string::npos) << r.out;
  }
  RunResult alone = run(loom_cmd({"env"}), 60s);
  ASSERT_EQ(alone.status, 0) << alone.err;
  EXPECT_NE(alone.out.find("launcher       singleton"), std::string::npos) << alone.out;
  EXPECT_NE(alone.out.find("world size     1"), std::string::npos) << alone.out;
}

}  // namespace
}  // namespace loom::test
