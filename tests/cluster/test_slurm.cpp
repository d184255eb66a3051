// A private single-node SLURM cluster (munged, slurmctld, slurmd from Debian's packages,
// started by slurm-up.sh in a temporary directory, stopped by slurm-down.sh also when a
// test fails) runs examples/slurm/glove-cpu.sbatch unchanged: `srun --mpi=pmix loom train`
// on GloVe (examples/glove.toml, made slower and checkpointing often: kConfig) on 2 ranks.
//  - The warning signal (scancel --signal=USR1, as --signal=USR1@120 sends it) makes every
//    rank stop after the same step and checkpoint; the script requeues the job, which
//    resumes and ends with the parameters, AdaGrad state and exported vectors of an
//    uninterrupted run at the same world size (mpirun -np 2), bit for bit.
//  - Ranks killed without warning: the job fails, is requeued (as SLURM does after a node
//    failure) and resumes from the last periodic checkpoint, again bit for bit.
#include <signal.h>
#include <sys/types.h>

#include <ctime>
#include <filesystem>
#include <memory>

#include "tests/cluster/cluster_support.h"

namespace loom::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// examples/glove.toml with these keys changed (the job script adds only run.dir): one
// thread per rank keeps runs and resumes bit-exact; D 400 and 300 epochs make training last
// ~6 s on 2 idle cores (1500 steps; twice that while other jobs share them), long enough to
// be signalled soon after its first checkpoint (step 50); no evaluation during training.
// Each test trains this about twice (the interrupted job and its resumption), and the
// reference once per binary.
const std::vector<std::string> kConfig = {"run.threads=1",   "glove.threads=1",          "glove.dim=400",
                                          "glove.epochs=300", "checkpoint.every_steps=50", "eval.every_epochs=0",
                                          "progress.interval_s=2"};
constexpr int kNp = 2;
const char* const kVectorFiles[] = {"vectors.txt", "vectors.bin"};

// An uninterrupted run of kConfig at the same world size, launched by mpirun: trained once
// per test binary and shared by the tests.
struct Reference {
  TempDir dir;
  std::vector<std::vector<float>> state;   // /model and /optimizer of the final checkpoint
  std::vector<std::string> vectors;        // kVectorFiles' bytes
};

std::vector<pid_t> job_ranks(const std::string& conf, const std::string& job);

class SlurmCluster {
 public:
  SlurmCluster() : dir_(dir_holder_.path() + "/slurm") {
    // munged needs every directory above its socket searchable by all.
    fs::permissions(dir_holder_.path(), fs::perms::others_exec | fs::perms::group_exec, fs::perm_options::add);
    RunResult r = sh(cluster_script("slurm-up.sh") + " " + dir_, 60s);
    up_ = r.status == 0;
    why_ = r.out + r.err;
  }
  ~SlurmCluster() { sh(cluster_script("slurm-down.sh") + " " + dir_, 60s); }
  bool up() const { return up_; }
  const std::string& why() const { return why_; }
  const std::string& work() const { return dir_holder_.path(); }
  std::string conf() const { return dir_ + "/slurm.conf"; }
  RunResult cmd(const std::string& line, const std::vector<std::string>& env = {}) const {
    std::vector<std::string> e = env;
    e.push_back("SLURM_CONF=" + conf());
    return sh(line, 60s, e);
  }
  std::string state(const std::string& job) const {   // "RUNNING None", "PENDING BeginTime" ...
    std::string s = cmd("squeue -h -t all -j " + job + " -o '%T %r'").out;
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    return s;
  }
  bool wait_state(const std::string& job, const std::string& prefix, std::chrono::milliseconds limit) const {
    return wait_until([&] { return state(job).rfind(prefix, 0) == 0; }, limit);
  }
  // A requeued job waits for its BeginTime; release it now. Slurmd refuses a credential
  // issued in the same second as the previous run's revocation ("Job credential revoked").
  // slurmd revokes the credential before it ends the job's tasks, so once no rank of the
  // job is left the revocation is past: wait for that, then for the clock's next second.
  void release(const std::string& job) const {
    EXPECT_TRUE(wait_until([&] { return job_ranks(conf(), job).empty(); }, 60s))
        << "ranks of the previous run of job " << job << " are still running";
    const std::time_t gone = std::time(nullptr);
    wait_until([&] { return std::time(nullptr) > gone; }, 5s);
    RunResult r = cmd("scontrol update JobId=" + job + " StartTime=now");
    EXPECT_EQ(r.status, 0) << r.err;
  }
  std::string log_tails() const {
    return cmd("tail -n 20 " + dir_ + "/log/slurmctld.log " + dir_ + "/log/slurmd.log").out;
  }

 private:
  TempDir dir_holder_;
  std::string dir_;
  bool up_ = false;
  std::string why_;
};

// Pids of the `loom` ranks of SLURM job `job` on cluster `conf`.
std::vector<pid_t> job_ranks(const std::string& conf, const std::string& job) {
  std::vector<pid_t> pids;
  for (const auto& entry : fs::directory_iterator("/proc")) {
    std::string name = entry.path().filename();
    if (name.find_first_not_of("0123456789") != std::string::npos) continue;
    if (read_file(entry.path().string() + "/comm") != "loom\n") continue;
    std::string env = read_file(entry.path().string() + "/environ");
    std::string want_job = std::string("SLURM_JOB_ID=") + job + '\0';
    std::string want_conf = std::string("SLURM_CONF=") + conf + '\0';
    if (env.find(want_job) != std::string::npos && env.find(want_conf) != std::string::npos)
      pids.push_back(static_cast<pid_t>(std::stol(name)));
  }
  return pids;
}

class Slurm : public ::testing::Test {
 protected:
  void SetUp() override {
    if (geteuid() != 0) LOOM_SKIP_OR_FAIL("needs root to run munged and slurmd (CI runs as root)");
    if (sh("command -v slurmctld || test -x /usr/sbin/slurmctld").status != 0)
      LOOM_SKIP_OR_FAIL("slurmctld not installed (apt-get install slurm-wlm munge)");
    cluster_ = std::make_unique<SlurmCluster>();
    if (!cluster_->up()) LOOM_SKIP_OR_FAIL("could not start a private SLURM cluster:\n" + cluster_->why());
    work_ = cluster_->work();
    config_ = work_ + "/glove.toml";
    write_file(config_, config_from_example("glove.toml", kConfig));
    if (reference_ == nullptr) reference_ = train_reference(config_);
    ASSERT_NE(reference_, nullptr);
  }
  static void TearDownTestSuite() { reference_.reset(); }

  static std::unique_ptr<Reference> train_reference(const std::string& config) {
    auto ref = std::make_unique<Reference>();
    std::vector<std::string> cmd = mpirun_prefix(kNp);
    cmd.insert(cmd.end(), {loom_binary(), "train", config, "--set", "run.dir=" + ref->dir.path()});
    auto t0 = std::chrono::steady_clock::now();
    RunResult r = run(cmd, 300s);
    EXPECT_EQ(r.status, 0) << r.err;
    if (r.status != 0) return nullptr;
    std::printf("uninterrupted run (mpirun -np %d): %lld ms\n", kNp,
                static_cast<long long>(
                    std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count()));
    ref->state = checkpoint_state(final_checkpoint(ref->dir.path()));
    for (const char* f : kVectorFiles) ref->vectors.push_back(read_file(ref->dir.file(f)));
    return ref;
  }

  // The final parameters, optimizer state and exported vectors of job's run equal the
  // reference's bit for bit.
  void expect_reference_result(const std::string& job, const std::string& what) const {
    expect_equal_state(checkpoint_state(final_checkpoint(run_dir(job))), reference_->state, what);
    for (size_t i = 0; i < std::size(kVectorFiles); ++i)
      EXPECT_TRUE(read_file(run_dir(job) + "/" + kVectorFiles[i]) == reference_->vectors[i])
          << what << ": " << kVectorFiles[i] << " differs from the uninterrupted run's";
  }

  std::string submit() {
    // sbatch exports this environment to the job; the script reads LOOM, LOOM_CONFIG and
    // LOOM_RUN_DIR. Yielding when idle keeps 2 polling ranks from starving each other and
    // the test on a 2-core machine (it changes no numbers).
    std::vector<std::string> env = {"LOOM=" + loom_binary(), "LOOM_CONFIG=" + config_,
                                    "LOOM_RUN_DIR=" + work_ + "/run-{job}", "OMPI_MCA_mpi_yield_when_idle=1"};
    RunResult r = cluster_->cmd("sbatch --parsable --nodes=1 --ntasks-per-node=" + std::to_string(kNp) +
                                    " --cpus-per-task=1 --chdir=" + work_ +
                                    " --output=" + work_ + "/job-%j.out " + LOOM_SOURCE_DIR +
                                    "/examples/slurm/glove-cpu.sbatch",
                                env);
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    std::string id = r.out.substr(0, r.out.find_first_of(";\n"));
    return id;
  }
  std::string run_dir(const std::string& job) const { return work_ + "/run-" + job; }
  std::string job_log(const std::string& job) const { return read_file(work_ + "/job-" + job + ".out"); }
  bool has_checkpoint(const std::string& job) const { return fs::exists(run_dir(job) + "/checkpoints/latest"); }

  std::unique_ptr<SlurmCluster> cluster_;
  std::string work_;
  std::string config_;
  static std::unique_ptr<Reference> reference_;
};

std::unique_ptr<Reference> Slurm::reference_;

TEST_F(Slurm, WarningSignalCheckpointsRequeuesAndResumesBitForBit) {
  std::string job = submit();
  ASSERT_FALSE(job.empty());
  ASSERT_TRUE(wait_until([&] { return has_checkpoint(job); }, 120s))
      << "no checkpoint; state " << cluster_->state(job) << "\n" << job_log(job) << cluster_->log_tails();
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(cluster_->cmd("scancel --signal=USR1 " + job).status, 0);
  ASSERT_TRUE(cluster_->wait_state(job, "PENDING", 60s))
      << "not requeued; state " << cluster_->state(job) << "\n" << job_log(job);
  auto t_requeued = std::chrono::steady_clock::now();
  cluster_->release(job);
  ASSERT_TRUE(cluster_->wait_state(job, "COMPLETED", 180s))
      << "state " << cluster_->state(job) << "\n" << job_log(job) << cluster_->log_tails();
  auto t1 = std::chrono::steady_clock::now();
  auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
  std::printf("USR1 -> requeued (PENDING): %lld ms; USR1 -> COMPLETED after resume: %lld ms\n",
              static_cast<long long>(ms(t_requeued - t0)), static_cast<long long>(ms(t1 - t0)));

  std::string log = job_log(job);
  EXPECT_NE(log.find("stop requested (signal 10): all ranks stopped after step"), std::string::npos) << log;
  EXPECT_NE(log.find("loom exited with status 138"), std::string::npos) << log;
  EXPECT_NE(log.find("requeued; the next run resumes"), std::string::npos) << log;
  EXPECT_NE(log.find("restart 1,"), std::string::npos) << log;
  EXPECT_NE(log.find("resumed from " + run_dir(job) + "/checkpoints/step_"), std::string::npos) << log;
  EXPECT_NE(cluster_->cmd("scontrol show job " + job).out.find("Restarts=1"), std::string::npos);
  expect_reference_result(job, "requeued SLURM job vs an uninterrupted run");
}

TEST_F(Slurm, KilledWithoutWarningResumesFromTheLastPeriodicCheckpoint) {
  std::string job = submit();
  ASSERT_FALSE(job.empty());
  ASSERT_TRUE(wait_until([&] { return has_checkpoint(job); }, 120s)) << job_log(job) << cluster_->log_tails();
  std::vector<pid_t> ranks = job_ranks(cluster_->conf(), job);
  ASSERT_EQ(ranks.size(), 2u) << "ranks of job " << job << " not found";
  for (pid_t p : ranks) kill(p, SIGKILL);
  ASSERT_TRUE(cluster_->wait_state(job, "FAILED", 60s)) << "state " << cluster_->state(job) << "\n" << job_log(job);
  std::string log = job_log(job);
  EXPECT_EQ(log.find("requeued; the next run"), std::string::npos) << "a crash must not requeue itself\n" << log;
  std::string last = read_file(run_dir(job) + "/checkpoints/latest");
  while (!last.empty() && last.back() == '\n') last.pop_back();
  ASSERT_FALSE(last.empty());

  // What SLURM does for a --requeue job after a node failure.
  ASSERT_EQ(cluster_->cmd("scontrol requeue " + job).status, 0);
  ASSERT_TRUE(cluster_->wait_state(job, "PENDING", 30s)) << cluster_->state(job);
  cluster_->release(job);
  ASSERT_TRUE(cluster_->wait_state(job, "COMPLETED", 180s))
      << "state " << cluster_->state(job) << "\n" << job_log(job) << cluster_->log_tails();
  log = job_log(job);
  EXPECT_NE(log.find("resumed from " + run_dir(job) + "/checkpoints/" + last), std::string::npos)
      << "expected a resume from the last periodic checkpoint " << last << "\n" << log;
  expect_reference_result(job, "SLURM job killed without warning, requeued, vs an uninterrupted run");
}

// Issue 21: the script `loom slurm` writes - a --set passed on, a job name, this binary by
// absolute path, a warning below the time limit - is one sbatch accepts as it is
// (`sbatch --test-only` on the private cluster; no reference run needed).
TEST(SlurmScript, WhatLoomSlurmWritesPassesSbatchTestOnly) {
  if (geteuid() != 0) LOOM_SKIP_OR_FAIL("needs root to run munged and slurmd (CI runs as root)");
  if (sh("command -v slurmctld || test -x /usr/sbin/slurmctld").status != 0)
    LOOM_SKIP_OR_FAIL("slurmctld not installed (apt-get install slurm-wlm munge)");
  SlurmCluster cluster;
  if (!cluster.up()) LOOM_SKIP_OR_FAIL("could not start a private SLURM cluster:\n" + cluster.why());
  RunResult gen = run({loom_binary(), "slurm", std::string(LOOM_SOURCE_DIR) + "/examples/glove.toml", "--job-name",
                       "glove.test-1", "--set", "glove.epochs=2", "--time", "00:10:00", "--warning", "60",
                       "--cpus-per-task", "1"},
                      60s);
  ASSERT_EQ(gen.status, 0) << gen.err;
  const std::string script = cluster.work() + "/job.sbatch";
  write_file(script, gen.out);
  RunResult test = cluster.cmd("sbatch --test-only --chdir=" + cluster.work() + " " + script);
  EXPECT_EQ(test.status, 0) << test.out << test.err;
  EXPECT_NE((test.out + test.err).find("to start at"), std::string::npos) << test.out << test.err;
  // Why `loom slurm` refuses a job name with a space: sbatch rejects the directive.
  std::string spaced = gen.out;
  spaced.replace(spaced.find("--job-name=glove.test-1"), 23, "--job-name=my run");
  write_file(cluster.work() + "/spaced.sbatch", spaced);
  RunResult refused = cluster.cmd("sbatch --test-only --chdir=" + cluster.work() + " " + cluster.work() + "/spaced.sbatch");
  EXPECT_NE(refused.status, 0) << refused.out << refused.err;
  EXPECT_NE(refused.err.find("Invalid directive"), std::string::npos) << refused.err;
}

}  // namespace
}  // namespace loom::test
