// End to end: the `loom` binary as a user runs it — alone, under mpirun -np 2 and 3 —
// its CLI (--version, --help, config errors) and its outputs (config.toml, metrics.jsonl).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <sstream>
#include <string>
#include <vector>

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
  std::string config = read_file(run_dir + "/config.toml");
  EXPECT_NE(config.find("steps = 12"), std::string::npos) << config;
  std::vector<nlohmann::json> metrics = read_jsonl(run_dir + "/metrics.jsonl");
  ASSERT_EQ(metrics.size(), 12u);
  for (size_t i = 0; i < metrics.size(); ++i) EXPECT_EQ(metrics[i]["step"].get<int64_t>(), int64_t(i));
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
  EXPECT_EQ(read_jsonl(dir.file("run") + "/metrics.jsonl").size(), 20u);
}

INSTANTIATE_TEST_SUITE_P(Np, SelftestRanks, ::testing::Values(2, 3));

TEST(Env, ListsEveryRankAndTheVersions) {
  RunResult r = run(mpi_loom(3, {"env"}), 120s);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("launcher       mpirun"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("world size     3"), std::string::npos) << r.out;
  for (const char* row : {"\n0 ", "\n1 ", "\n2 "}) EXPECT_NE(r.out.find(row), std::string::npos) << r.out;
  for (const char* lib : {"MPI            Open MPI", "HDF5           1.", "NCCL", "CUDA runtime"})
    EXPECT_NE(r.out.find(lib), std::string::npos) << lib << " in:\n" << r.out;
  RunResult alone = run(loom_cmd({"env"}), 60s);
  ASSERT_EQ(alone.status, 0) << alone.err;
  EXPECT_NE(alone.out.find("launcher       singleton"), std::string::npos) << alone.out;
  EXPECT_NE(alone.out.find("world size     1"), std::string::npos) << alone.out;
}

}  // namespace
}  // namespace loom::test
