// Three hosts simulated on this machine as network namespaces joined by a bridge (their
// addresses exist only inside them), each with its own hostname (UTS namespace); mpirun on
// h1 starts ranks on h2 and h3 through the nsrsh agent (hosts-up.sh / hosts-down.sh, the
// namespaces are deleted also when a test fails), over TCP as on a cluster without
// InfiniBand:
//  - `loom env` sees three nodes; `loom train` on GloVe (examples/glove.toml, small: kSets)
//    across them ends with the parameters, AdaGrad state and exported vectors of a run of
//    the same world size on one host, bit for bit;
//  - killing the rank of h2 ends the whole job promptly with a message naming the rank and
//    the host; --resume auto across the hosts then finishes with the same bits.
#include <signal.h>

#include <filesystem>
#include <sstream>

#include "tests/cluster/cluster_support.h"

namespace loom::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// examples/glove.toml made small and checkpointing often: ~3 s of training on 3 ranks
// (450 steps, a checkpoint every 20), bit-exact with one thread per rank, no evaluation
// during training.
const std::vector<std::string> kSets = {"run.threads=1",    "glove.threads=1",          "glove.dim=200",
                                        "glove.epochs=150", "checkpoint.every_steps=20", "eval.every_epochs=0",
                                        "progress.interval_s=2"};

class Hosts : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) LOOM_SKIP_OR_FAIL("needs root to create network namespaces (CI runs as root)");
    RunResult r = sh(cluster_script("hosts-up.sh") + " " + dir_.path() + " 3", 60s);
    if (r.status != 0) LOOM_SKIP_OR_FAIL("cannot simulate hosts on this machine: " + r.out + r.err);
    up_ = true;
  }
  void TearDown() override {
    if (up_) sh(cluster_script("hosts-down.sh") + " " + dir_.path(), 60s);
  }

  // mpirun on h1 across h1..h3, one rank per host, over TCP on the hosts' network.
  std::vector<std::string> across_hosts() const {
    return {dir_.file("mpirun-h1"), "mpirun", "-np", "3", "--hostfile", dir_.file("hostfile"), "--map-by", "node",
            "--mca", "plm_rsh_agent", dir_.file("nsrsh"), "--mca", "btl", "self,vader,tcp",
            "--mca", "btl_tcp_if_include", "10.251.0.0/24", "--mca", "oob_tcp_if_include", "10.251.0.0/24",
            "--mca", "mpi_yield_when_idle", "1"};
  }
  std::vector<std::string> train(std::vector<std::string> prefix, const std::string& run_dir,
                                 const std::string& resume = "") const {
    prefix.insert(prefix.end(), {loom_binary(), "train", std::string(LOOM_SOURCE_DIR) + "/examples/glove.toml", "--set",
                                 "run.dir=" + run_dir});
    for (const std::string& s : kSets) prefix.insert(prefix.end(), {"--set", s});
    if (!resume.empty()) prefix.insert(prefix.end(), {"--resume", resume});
    return prefix;
  }
  // The loom ranks running inside host hK's namespace.
  std::vector<pid_t> ranks_on(int host) const {
    std::string ns = read_file(dir_.file("namespaces"));
    std::istringstream lines(ns);
    std::string name;
    for (int i = 0; i <= host; ++i) std::getline(lines, name);   // line 0 is the switch
    RunResult r = sh("for p in $(ip netns pids " + name + "); do [ \"$(cat /proc/$p/comm)\" = loom ] && echo $p; done");
    std::vector<pid_t> pids;
    std::istringstream out(r.out);
    for (long p; out >> p;) pids.push_back(static_cast<pid_t>(p));
    return pids;
  }

  TempDir dir_;
  bool up_ = false;
};

TEST_F(Hosts, TrainAcrossHostsKillOneHostResume) {
  RunResult env = run([&] {
    auto cmd = across_hosts();
    cmd.insert(cmd.end(), {loom_binary(), "env"});
    return cmd;
  }(), 120s);
  ASSERT_EQ(env.status, 0) << env.out << env.err;
  EXPECT_NE(env.out.find("3 on 3 node(s)"), std::string::npos) << env.out;
  for (const char* h : {"\n0     h1 ", "\n1     h2 ", "\n2     h3 "})
    EXPECT_NE(env.out.find(h), std::string::npos) << "expected '" << h + 1 << "' in\n" << env.out;

  // Reference: the same world size on one host.
  TempDir ref;
  RunResult r = run(train(mpirun_prefix(3), ref.path()), 300s);
  ASSERT_EQ(r.status, 0) << r.err;
  const auto reference = checkpoint_state(final_checkpoint(ref.path()));
  const std::string reference_vectors = read_file(ref.file("vectors.txt"));

  // Across the three hosts, uninterrupted.
  TempDir whole;
  r = run(train(across_hosts(), whole.path()), 300s);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  expect_equal_state(checkpoint_state(final_checkpoint(whole.path())), reference, "three hosts vs one host");
  EXPECT_TRUE(read_file(whole.file("vectors.txt")) == reference_vectors) << "three hosts vs one host: vectors.txt";

  // Kill the rank of h2 after a periodic checkpoint: the job must end promptly, naming it.
  TempDir killed;
  {
    Process p(train(across_hosts(), killed.path()));
    ASSERT_TRUE(wait_until([&] { return fs::exists(killed.path() + "/checkpoints/latest"); }, 120s)) << p.err();
    std::vector<pid_t> victims = ranks_on(2);
    ASSERT_EQ(victims.size(), 1u) << "the rank on h2 was not found";
    auto t0 = std::chrono::steady_clock::now();
    kill(victims[0], SIGKILL);
    ASSERT_TRUE(p.wait_for(60s)) << "the job did not end after h2's rank was killed";
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
    std::printf("rank on h2 killed: mpirun ended after %lld ms with status %d\n", static_cast<long long>(ms),
                p.exit_status());
    EXPECT_LT(ms, 20000);
    EXPECT_NE(p.exit_status(), 0);
    std::string all = p.out() + p.err();
    EXPECT_NE(all.find("process rank 1 with PID"), std::string::npos) << all;
    EXPECT_NE(all.find("on node h2"), std::string::npos) << all;
    for (int h : {1, 3}) EXPECT_TRUE(ranks_on(h).empty()) << "a rank is left on h" << h;
  }
  r = run(train(across_hosts(), killed.path(), "auto"), 300s);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.err.find("resumed from"), std::string::npos) << r.err;
  expect_equal_state(checkpoint_state(final_checkpoint(killed.path())), reference,
                     "three hosts, h2's rank killed, resumed, vs one host");
  EXPECT_TRUE(read_file(killed.file("vectors.txt")) == reference_vectors)
      << "three hosts, h2's rank killed, resumed, vs one host: vectors.txt";
}

}  // namespace
}  // namespace loom::test
