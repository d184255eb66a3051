// A private single-node SLURM cluster (munged, slurmctld, slurmd from Debian's packages,
// started by slurm-up.sh in a temporary directory, stopped by slurm-down.sh also when a
// test fails) runs the job scripts of examples/slurm (glove-cpu.sbatch, word2vec-cpu.sbatch)
// unchanged, or as `loom slurm` writes them: `srun --mpi=pmix loom train` on GloVe and
// word2vec (the examples' configs, made slower and checkpointing often: kGlove, kWord2vec)
// on 2 ranks. Every case ends with the parameters, optimizer state and exported vectors of
// an uninterrupted run at the same world size (mpirun -np 2), bit for bit.
//  - The warning signal (scancel --signal=USR1, as --signal=USR1@120 sends it) makes every
//    rank stop after the same step and checkpoint; the script requeues the job, which
//    resumes.
//  - The real time-limit signal: a script `loom slurm --time 00:01:00 --warning 27` wrote,
//    submitted so that slurmctld's time-limit pass (every 30 s) falls a few seconds into the
//    job; SLURM itself sends SIGUSR1 (GloVe and word2vec).
//  - SIGTERM: plain `scancel JOB` (TERM to every rank and the shell, SIGKILL after KillWait)
//    stops the ranks with a checkpoint and 143; the cancelled job stays cancelled and a
//    resubmission on the same run directory resumes. A TERM to the batch shell only
//    (`scancel --batch --signal=TERM`) reaches the ranks too and the job requeues itself.
//  - Preemption: a job of partition `urgent` (PreemptType=preempt/partition_prio,
//    PreemptMode=REQUEUE in slurm-up.sh) preempts the loom job, which stops on SLURM's
//    SIGTERM with a checkpoint, is requeued by SLURM and resumes (GloVe and word2vec).
//  - Ranks killed without warning: the job fails, is requeued (as SLURM does after a node
//    failure) and resumes from the last periodic checkpoint.
#include <signal.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdio>
#include <ctime>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>

#include "tests/cluster/cluster_support.h"

namespace loom::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

// A model as the tests train it: an example config with some keys changed (the job script
// adds only run.dir), the job script of examples/slurm for it, and the files compared.
struct Model {
  std::string key;       // names its reference run
  std::string name;      // "glove", "word2vec"
  std::vector<std::string> sets;
  std::vector<std::string> vectors;   // exported files compared byte for byte
  std::string example() const { return name + ".toml"; }
  std::string script() const { return std::string(LOOM_SOURCE_DIR) + "/examples/slurm/" + name + "-cpu.sbatch"; }
};

// examples/glove.toml: one thread per rank keeps runs and resumes bit-exact; D 400 and 300
// epochs make training last ~6 s on 2 idle cores (1800 steps; several times that while other
// jobs share them), long enough to be signalled after its first checkpoint (step 50); no
// evaluation during training.
const Model kGlove{"glove",
                   "glove",
                   {"run.threads=1", "glove.threads=1", "glove.dim=400", "glove.epochs=300",
                    "checkpoint.every_steps=50", "eval.every_epochs=0", "progress.interval_s=2"},
                   {"vectors.txt", "vectors.bin"}};
// The same for 1600 epochs (~21 s on 2 idle cores; 800 took 10.7 s): still training when the
// time-limit pass comes 4-9 s into the job (Note [The time-limit signal in a test]), with room
// for a faster machine.
const Model kGloveLong{"glove-long",
                       "glove",
                       {"run.threads=1", "glove.threads=1", "glove.dim=400", "glove.epochs=1600",
                        "checkpoint.every_steps=50", "eval.every_epochs=0", "progress.interval_s=2"},
                       {"vectors.txt", "vectors.bin"}};
// examples/word2vec.toml as tests/fault/word2vec_resume_test.cpp trains it (bit-exact on
// resume: one thread, every row summed every 3rd step), for 16 epochs: ~4 s on 2 idle cores.
const Model kWord2vec{"word2vec",
                      "word2vec",
                      {"run.threads=1", "word2vec.threads=1", "word2vec.dim=200", "word2vec.epochs=16",
                       "word2vec.rare_every=3", "word2vec.rare_below=1e9", "checkpoint.every_steps=50",
                       "eval.every_epochs=0", "progress.interval_s=2"},
                      {"vectors.txt", "vectors.w2v.txt", "vectors.bin"}};
// The same for 192 epochs (~20 s on 2 idle cores; 64 took 6.8 s and ended before slurmctld's
// pass twice in a row), for the time-limit signal.
const Model kWord2vecLong{"word2vec-long",
                          "word2vec",
                          {"run.threads=1", "word2vec.threads=1", "word2vec.dim=200", "word2vec.epochs=192",
                           "word2vec.rare_every=3", "word2vec.rare_below=1e9", "checkpoint.every_steps=50",
                           "eval.every_epochs=0", "progress.interval_s=2"},
                          {"vectors.txt", "vectors.w2v.txt", "vectors.bin"}};
constexpr int kNp = 2;

// An uninterrupted run of a model at the same world size, launched by mpirun: trained once
// per model and test binary and shared by the tests.
struct Reference {
  TempDir dir;
  std::vector<std::vector<float>> state;   // /model and /optimizer of the final checkpoint
  std::vector<std::string> vectors;        // the model's vector files' bytes
};

long long ms_since(std::chrono::steady_clock::time_point t0) {
  return static_cast<long long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count());
}

// Seconds since the epoch of a slurmctld log line "[2026-12-06T05:09:02.552] ..." (local
// time, as slurmctld writes it), nullopt for a line without one.
std::optional<double> log_line_time(const std::string& line) {
  std::tm tm{};
  int ms = 0;
  if (std::sscanf(line.c_str(), "[%d-%d-%dT%d:%d:%d.%d]", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
                  &tm.tm_min, &tm.tm_sec, &ms) != 7)
    return std::nullopt;
  tm.tm_year -= 1900;
  tm.tm_mon -= 1;
  tm.tm_isdst = -1;
  return static_cast<double>(std::mktime(&tm)) + ms / 1000.0;
}

double wall_now() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

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
  std::string tmpfs() const { return dir_ + "/tmp"; }   // slurm.conf's TmpFS (slurm-up.sh)
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
  // Times (seconds since the epoch) of the slurmctld log lines that contain `text`.
  std::vector<double> log_times(const std::string& text) const {
    std::vector<double> times;
    std::istringstream in(read_file(dir_ + "/log/slurmctld.log"));
    for (std::string line; std::getline(in, line);)
      if (line.find(text) != std::string::npos)
        if (std::optional<double> t = log_line_time(line)) times.push_back(*t);
    return times;
  }
  // slurmctld checks time limits, and sends --signal=SIG@N warnings, in a pass every 30 s
  // (PERIODIC_TIMEOUT; logged at debug2, which slurm-up.sh sets).
  std::vector<double> time_limit_passes() const { return log_times("Testing job time limits"); }

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
    // A step launched within seconds of slurmd's start failed once ("task 0 launch failed:
    // Unspecified error", srun status 0): wait until a 2-task step runs.
    RunResult probe;
    const bool launches = wait_until([&] { return (probe = cluster_->cmd("timeout 20 srun -n 2 true")).status == 0; }, 30s);
    if (!launches) LOOM_SKIP_OR_FAIL("the private SLURM cluster cannot launch a step:\n" + probe.out + probe.err);
    work_ = cluster_->work();
    for (const Model* m : {&kGlove, &kGloveLong, &kWord2vec, &kWord2vecLong})
      write_file(config(*m), config_from_example(m->example(), m->sets));
  }
  static void TearDownTestSuite() { references_.clear(); }

  std::string config(const Model& m) const { return work_ + "/" + m.key + ".toml"; }

  // The uninterrupted run of `m`, trained on first use.
  const Reference& reference(const Model& m) {
    std::unique_ptr<Reference>& ref = references_[m.key];
    if (ref == nullptr) ref = train_reference(m, config(m));
    if (ref == nullptr) throw std::runtime_error("the uninterrupted " + m.key + " run failed");
    return *ref;
  }

  static std::unique_ptr<Reference> train_reference(const Model& m, const std::string& config) {
    auto ref = std::make_unique<Reference>();
    std::vector<std::string> cmd = mpirun_prefix(kNp);
    cmd.insert(cmd.end(), {loom_binary(), "train", config, "--set", "run.dir=" + ref->dir.path()});
    auto t0 = std::chrono::steady_clock::now();
    RunResult r = run(cmd, 300s);
    EXPECT_EQ(r.status, 0) << r.err;
    if (r.status != 0) return nullptr;
    std::printf("uninterrupted %s run (mpirun -np %d): %lld ms\n", m.key.c_str(), kNp, ms_since(t0));
    ref->state = checkpoint_state(final_checkpoint(ref->dir.path()));
    for (const std::string& f : m.vectors) ref->vectors.push_back(read_file(ref->dir.file(f)));
    return ref;
  }

  // The final parameters, optimizer state and exported vectors in `dir` equal the
  // reference's bit for bit.
  void expect_reference_result(const Model& m, const std::string& dir, const std::string& what) {
    const Reference& ref = reference(m);
    expect_equal_state(checkpoint_state(final_checkpoint(dir)), ref.state, what);
    for (size_t i = 0; i < m.vectors.size(); ++i)
      EXPECT_TRUE(read_file(dir + "/" + m.vectors[i]) == ref.vectors[i])
          << what << ": " << m.vectors[i] << " differs from the uninterrupted run's";
  }

  // Submits `script` (default: the model's examples/slurm script) on 2 ranks of one node.
  // sbatch exports this environment to the job; the script reads LOOM, LOOM_CONFIG and
  // LOOM_RUN_DIR. Yielding when idle keeps 2 polling ranks from starving each other and the
  // test on a 2-core machine (it changes no numbers).
  std::string submit(const Model& m, const std::string& script = "", const std::string& run_dir = "",
                     const std::string& sbatch_options = "") {
    std::vector<std::string> env = {"LOOM=" + loom_binary(), "LOOM_CONFIG=" + config(m),
                                    "LOOM_RUN_DIR=" + (run_dir.empty() ? work_ + "/run-{job}" : run_dir),
                                    "OMPI_MCA_mpi_yield_when_idle=1"};
    RunResult r = cluster_->cmd("sbatch --parsable --nodes=1 --ntasks-per-node=" + std::to_string(kNp) +
                                    " --cpus-per-task=1 --chdir=" + work_ + " --output=" + work_ + "/job-%j.out " +
                                    sbatch_options + " " + (script.empty() ? m.script() : script),
                                env);
    EXPECT_EQ(r.status, 0) << r.out << r.err;
    std::string id = r.out.substr(0, r.out.find_first_of(";\n"));
    return id;
  }
  std::string run_dir(const std::string& job) const { return work_ + "/run-" + job; }
  std::string job_log(const std::string& job) const { return read_file(work_ + "/job-" + job + ".out"); }
  bool has_checkpoint(const std::string& job) const { return fs::exists(run_dir(job) + "/checkpoints/latest"); }
  std::string diagnose(const std::string& job) const {
    return "state " + cluster_->state(job) + "\n" + job_log(job) + cluster_->log_tails();
  }
  int restarts(const std::string& job) const {
    const std::string show = cluster_->cmd("scontrol show job " + job).out;
    const size_t at = show.find("Restarts=");
    return at == std::string::npos ? -1 : std::atoi(show.c_str() + at + 9);
  }
  static size_t count(const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  }

  // Runs `job` to COMPLETED, releasing it each time it waits requeued (PENDING BeginTime);
  // false when it ends otherwise. Passing states (REQUEUED, COMPLETING, CONFIGURING) and an
  // empty answer from a squeue that timed out on a loaded machine are waited out.
  bool run_to_completion(const std::string& job, std::chrono::seconds limit = 300s) {
    const auto t0 = std::chrono::steady_clock::now();
    while (std::chrono::steady_clock::now() - t0 < limit) {
      const std::string st = cluster_->state(job);
      if (st.rfind("COMPLETED", 0) == 0) return true;
      if (st.rfind("PENDING BeginTime", 0) == 0) {
        cluster_->release(job);
        continue;
      }
      for (const char* end : {"FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL", "DEADLINE"})
        if (st.rfind(end, 0) == 0) return false;
      std::this_thread::sleep_for(100ms);
    }
    return false;
  }

  // The time-limit signal of a script `loom slurm --time 00:01:00 --warning 27` writes.
  void time_limit_signal_resumes_bit_for_bit(const Model& m);
  // A higher-priority job preempts the loom job (PreemptMode=REQUEUE).
  void preemption_requeues_and_resumes_bit_for_bit(const Model& m);

  std::unique_ptr<SlurmCluster> cluster_;
  std::string work_;
  static std::map<std::string, std::unique_ptr<Reference>> references_;
};

std::map<std::string, std::unique_ptr<Reference>> Slurm::references_;

TEST_F(Slurm, WarningSignalCheckpointsRequeuesAndResumesBitForBit) {
  std::string job = submit(kGlove);
  ASSERT_FALSE(job.empty());
  ASSERT_TRUE(wait_until([&] { return has_checkpoint(job); }, 120s)) << "no checkpoint; " << diagnose(job);
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(cluster_->cmd("scancel --signal=USR1 " + job).status, 0);
  ASSERT_TRUE(cluster_->wait_state(job, "PENDING", 60s)) << "not requeued; " << diagnose(job);
  const long long requeued_ms = ms_since(t0);
  cluster_->release(job);
  ASSERT_TRUE(cluster_->wait_state(job, "COMPLETED", 180s)) << diagnose(job);
  std::printf("USR1 -> requeued (PENDING): %lld ms; USR1 -> COMPLETED after resume: %lld ms\n", requeued_ms,
              ms_since(t0));

  std::string log = job_log(job);
  EXPECT_NE(log.find("stop requested (signal 10): all ranks stopped after step"), std::string::npos) << log;
  EXPECT_NE(log.find("loom exited with status 138"), std::string::npos) << log;
  EXPECT_NE(log.find("requeued; the next run resumes"), std::string::npos) << log;
  EXPECT_NE(log.find("restart 1,"), std::string::npos) << log;
  EXPECT_NE(log.find("resumed from " + run_dir(job) + "/checkpoints/step_"), std::string::npos) << log;
  EXPECT_EQ(restarts(job), 1);
  expect_reference_result(kGlove, run_dir(job), "requeued SLURM job vs an uninterrupted run");
}

// Note [The time-limit signal in a test]
// slurmctld sends `--signal=SIG@N` from its time-limit pass, which runs every 30 s
// (PERIODIC_TIMEOUT, not configurable): at the first pass where now + N + 30 >= the end
// time, i.e. up to 60 s before the N the user asked for (measured here with
// --time=1 --signal=USR1@30: 5 s after the job started, at the first pass). A job with
// --time 1:00 and --warning 27 is signalled at the first pass at least 3 s after its start
// (the srun step must exist: a warning sent before it is lost). Where that pass falls
// depends on when the job started, so the test reads the passes' times from slurmctld's log
// and submits the job ~8 s before the next one: the signal then comes 4-9 s into the job,
// inside training. Each requeued run gets its own signal at the first pass 3 s into it, so a
// run that cannot finish before the next pass is requeued again: the test releases the job
// until it completes. If run 1 finished before the pass (a very fast machine), the test
// tries once more.
void Slurm::time_limit_signal_resumes_bit_for_bit(const Model& m) {
  RunResult gen = run({loom_binary(), "slurm", config(m), "--time", "00:01:00", "--warning", "27", "--nodes", "1",
                       "--ntasks-per-node", std::to_string(kNp), "--cpus-per-task", "1", "--job-name",
                       "loom-timelimit-" + m.name},
                      60s);
  ASSERT_EQ(gen.status, 0) << gen.err;
  ASSERT_NE(gen.out.find("#SBATCH --time=00:01:00\n"), std::string::npos) << gen.out;
  ASSERT_NE(gen.out.find("#SBATCH --signal=USR1@27 "), std::string::npos) << gen.out;
  const std::string script = work_ + "/timelimit-" + m.name + ".sbatch";
  write_file(script, gen.out);
  reference(m);   // trained first: the job below is timed against slurmctld's passes

  for (int attempt = 1; attempt <= 2; ++attempt) {
    // The next pass: 30 s (29.5-31.5: slurmctld compares whole seconds) after the last
    // logged one, or after slurmctld's start (measured: the first pass 30.6 s later).
    const std::vector<double> passes = cluster_->time_limit_passes();
    const std::vector<double> started = cluster_->log_times("slurmctld version");
    ASSERT_FALSE(passes.empty() && started.empty()) << "no start line in slurmctld's log\n" << cluster_->log_tails();
    double next = (passes.empty() ? started.back() : passes.back()) + 30;
    if (next - wall_now() < 9) {   // too close: wait for it and aim at the one after
      ASSERT_TRUE(wait_until([&] { return cluster_->time_limit_passes().size() > passes.size(); }, 40s))
          << "slurmctld logged no time-limit pass in 40 s\n" << cluster_->log_tails();
      next = cluster_->time_limit_passes().back() + 30;
    }
    std::this_thread::sleep_for(std::chrono::duration<double>(next - 8 - wall_now()));
    const std::string job = submit(m, script);
    ASSERT_FALSE(job.empty());
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_TRUE(run_to_completion(job)) << diagnose(job);
    const long long total_ms = ms_since(t0);

    const std::vector<double> starts = cluster_->log_times("sched: Allocate JobId=" + job + " ");
    const std::vector<double> signals = cluster_->log_times("warning signal 10 to JobId=" + job);
    std::string arrivals;
    for (size_t i = 0; i < signals.size(); ++i) {
      double start = 0;
      for (double s : starts)
        if (s <= signals[i]) start = s;
      char buf[64];
      std::snprintf(buf, sizeof buf, "%s+%.1f s", i ? ", " : "", signals[i] - start);
      arrivals += buf;
    }
    const std::string log = job_log(job);
    std::printf("%s, attempt %d: %zu run(s), SIGUSR1 from the time limit at [%s] after the run's start; "
                "submitted -> COMPLETED %lld ms\n",
                m.name.c_str(), attempt, starts.size(), arrivals.c_str(), total_ms);
    if (signals.empty() && attempt == 1) {
      std::printf("the first run finished before slurmctld's pass: trying once more\n");
      continue;
    }
    ASSERT_FALSE(signals.empty()) << "SLURM sent no time-limit signal to job " << job << "\n" << log;
    EXPECT_GE(signals.front() - starts.front(), 2.0) << "the signal came before the srun step could exist";
    EXPECT_LE(signals.front() - starts.front(), 33.0);
    // Every signal stopped a run cleanly, and every run after the first resumed.
    EXPECT_EQ(count(log, "[r0/2][train] stop requested (signal 10): all ranks stopped after step"), signals.size())
        << log;
    EXPECT_EQ(count(log, "loom exited with status 138"), signals.size()) << log;
    EXPECT_EQ(count(log, "requeued; the next run resumes"), signals.size()) << log;
    EXPECT_EQ(count(log, "resumed from " + run_dir(job) + "/checkpoints/step_"), signals.size()) << log;
    EXPECT_EQ(log.find("TIME LIMIT"), std::string::npos) << "a run reached the time limit\n" << log;
    EXPECT_EQ(restarts(job), static_cast<int>(signals.size()));
    expect_reference_result(m, run_dir(job), m.name + " requeued on the time-limit signal vs an uninterrupted run");
    return;
  }
}

TEST_F(Slurm, TimeLimitSignalOfGloveRequeuesAndResumesBitForBit) {
  time_limit_signal_resumes_bit_for_bit(kGloveLong);
}
TEST_F(Slurm, TimeLimitSignalOfWord2vecRequeuesAndResumesBitForBit) {
  time_limit_signal_resumes_bit_for_bit(kWord2vecLong);
}

// Plain `scancel JOB`: SLURM sends SIGTERM to every rank (and the batch shell), SIGKILL
// KillWait (5 s) later. The ranks stop after the same step with a checkpoint and exit 143;
// the job is cancelled for good (the script's requeue is refused), and a new job on the same
// run directory (--resume auto) ends bit for bit.
TEST_F(Slurm, ScancelStopsTheRanksWithACheckpointAndAResubmissionResumesBitForBit) {
  std::string job = submit(kGlove);
  ASSERT_FALSE(job.empty());
  ASSERT_TRUE(wait_until([&] { return has_checkpoint(job); }, 120s)) << "no checkpoint; " << diagnose(job);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(cluster_->cmd("scancel " + job).status, 0);
  ASSERT_TRUE(cluster_->wait_state(job, "CANCELLED", 60s)) << diagnose(job);
  const long long cancelled_ms = ms_since(t0);
  ASSERT_TRUE(wait_until([&] { return job_ranks(cluster_->conf(), job).empty(); }, 60s));
  const long long gone_ms = ms_since(t0);
  std::string log = job_log(job);
  const std::string stop = "stop requested (signal 15): all ranks stopped after step ";
  const size_t at = log.find(stop);
  ASSERT_NE(at, std::string::npos) << "the ranks did not stop cleanly on SIGTERM\n" << log;
  const long long step = std::atoll(log.c_str() + at + stop.size());
  char name[32];
  std::snprintf(name, sizeof name, "step_%08lld", step);
  std::printf("scancel -> CANCELLED %lld ms, ranks gone %lld ms; stopped after step %lld\n", cancelled_ms, gone_ms,
              step);
  EXPECT_NE(log.find("loom exited with status 143"), std::string::npos) << log;
  EXPECT_EQ(log.find("requeued; the next run"), std::string::npos) << "a cancelled job requeued itself\n" << log;
  EXPECT_NE(log.find("not requeued by this script: SLURM has the job"), std::string::npos) << log;
  EXPECT_TRUE(cluster_->wait_state(job, "CANCELLED", 1s)) << "the job did not stay cancelled; " << diagnose(job);
  std::string latest = read_file(run_dir(job) + "/checkpoints/latest");
  EXPECT_EQ(latest.substr(0, latest.find_first_of(".\n")), name) << "the stop checkpoint is not the latest";

  const std::string again = submit(kGlove, "", run_dir(job));
  ASSERT_FALSE(again.empty());
  ASSERT_TRUE(cluster_->wait_state(again, "COMPLETED", 180s)) << diagnose(again);
  log = job_log(again);
  EXPECT_NE(log.find("resumed from " + run_dir(job) + "/checkpoints/" + name), std::string::npos) << log;
  expect_reference_result(kGlove, run_dir(job), "cancelled SLURM job resubmitted vs an uninterrupted run");
}

// SIGTERM to the batch shell only (`scancel --batch --signal=TERM`; a site's B:TERM): the
// script passes it on to the ranks through `scancel --signal=TERM JOB`. (Through srun, as the
// script once did, srun answered with SIGKILL: the ranks died without a checkpoint, 137.)
// The ranks stop with a checkpoint, 143; the job requeues itself and resumes.
TEST_F(Slurm, TermToTheBatchShellReachesTheRanksAndTheJobResumesBitForBit) {
  std::string job = submit(kGlove);
  ASSERT_FALSE(job.empty());
  ASSERT_TRUE(wait_until([&] { return has_checkpoint(job); }, 120s)) << "no checkpoint; " << diagnose(job);
  const auto t0 = std::chrono::steady_clock::now();
  ASSERT_EQ(cluster_->cmd("scancel --batch --signal=TERM " + job).status, 0);
  ASSERT_TRUE(cluster_->wait_state(job, "PENDING", 60s)) << "not requeued; " << diagnose(job);
  const long long requeued_ms = ms_since(t0);
  ASSERT_TRUE(run_to_completion(job)) << diagnose(job);
  std::printf("TERM to the batch shell -> requeued %lld ms\n", requeued_ms);
  const std::string log = job_log(job);
  EXPECT_NE(log.find("stop requested (signal 15): all ranks stopped after step"), std::string::npos) << log;
  EXPECT_NE(log.find("loom exited with status 143"), std::string::npos) << log;
  EXPECT_NE(log.find("requeued; the next run resumes"), std::string::npos) << log;
  EXPECT_NE(log.find("resumed from " + run_dir(job) + "/checkpoints/step_"), std::string::npos) << log;
  expect_reference_result(kGlove, run_dir(job), "TERM to the batch shell, requeued, vs an uninterrupted run");
}

void Slurm::preemption_requeues_and_resumes_bit_for_bit(const Model& m) {
  reference(m);
  std::string job = submit(m);
  ASSERT_FALSE(job.empty());
  ASSERT_TRUE(wait_until([&] { return has_checkpoint(job); }, 120s)) << "no checkpoint; " << diagnose(job);
  // One CPU of partition urgent: the node has no free one, so slurmctld preempts the loom job.
  const auto t0 = std::chrono::steady_clock::now();
  RunResult r = cluster_->cmd("sbatch --parsable --partition=urgent --ntasks=1 --chdir=" + work_ + " --output=" +
                              work_ + "/urgent-%j.out --wrap 'sleep 1'");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  const std::string urgent = r.out.substr(0, r.out.find_first_of(";\n"));
  ASSERT_TRUE(cluster_->wait_state(job, "PENDING", 60s)) << "not preempted; " << diagnose(job);
  const long long preempted_ms = ms_since(t0);
  ASSERT_TRUE(cluster_->wait_state(urgent, "COMPLETED", 60s)) << diagnose(urgent);
  const long long urgent_ms = ms_since(t0);
  ASSERT_TRUE(run_to_completion(job)) << diagnose(job);
  std::printf("%s: urgent job submitted -> loom job requeued %lld ms, urgent job COMPLETED %lld ms, "
              "loom job COMPLETED %lld ms\n",
              m.name.c_str(), preempted_ms, urgent_ms, ms_since(t0));
  const std::string log = job_log(job);
  EXPECT_NE(log.find("DUE TO PREEMPTION"), std::string::npos) << log;
  EXPECT_NE(log.find("stop requested (signal 15): all ranks stopped after step"), std::string::npos) << log;
  EXPECT_NE(log.find("loom exited with status 143"), std::string::npos) << log;
  EXPECT_NE(log.find("not requeued by this script: SLURM has the job"), std::string::npos) << log;
  EXPECT_NE(log.find("resumed from " + run_dir(job) + "/checkpoints/step_"), std::string::npos) << log;
  EXPECT_EQ(restarts(job), 1) << "SLURM's requeue and the script's must not both count";
  expect_reference_result(m, run_dir(job), m.name + " preempted, requeued, vs an uninterrupted run");
}

TEST_F(Slurm, PreemptedGloveJobIsRequeuedAndResumesBitForBit) { preemption_requeues_and_resumes_bit_for_bit(kGlove); }
TEST_F(Slurm, PreemptedWord2vecJobIsRequeuedAndResumesBitForBit) {
  preemption_requeues_and_resumes_bit_for_bit(kWord2vec);
}

TEST_F(Slurm, KilledWithoutWarningResumesFromTheLastPeriodicCheckpoint) {
  std::string job = submit(kGlove);
  ASSERT_FALSE(job.empty());
  ASSERT_TRUE(wait_until([&] { return has_checkpoint(job); }, 120s)) << diagnose(job);
  std::vector<pid_t> ranks = job_ranks(cluster_->conf(), job);
  ASSERT_EQ(ranks.size(), 2u) << "ranks of job " << job << " not found";
  for (pid_t p : ranks) kill(p, SIGKILL);
  ASSERT_TRUE(cluster_->wait_state(job, "FAILED", 60s)) << diagnose(job);
  std::string log = job_log(job);
  EXPECT_EQ(log.find("requeued; the next run"), std::string::npos) << "a crash must not requeue itself\n" << log;
  std::string last = read_file(run_dir(job) + "/checkpoints/latest");
  while (!last.empty() && last.back() == '\n') last.pop_back();
  ASSERT_FALSE(last.empty());

  // What SLURM does for a --requeue job after a node failure.
  ASSERT_EQ(cluster_->cmd("scontrol requeue " + job).status, 0);
  ASSERT_TRUE(cluster_->wait_state(job, "PENDING", 30s)) << cluster_->state(job);
  cluster_->release(job);
  ASSERT_TRUE(cluster_->wait_state(job, "COMPLETED", 180s)) << diagnose(job);
  log = job_log(job);
  EXPECT_NE(log.find("resumed from " + run_dir(job) + "/checkpoints/" + last), std::string::npos)
      << "expected a resume from the last periodic checkpoint " << last << "\n" << log;
  expect_reference_result(kGlove, run_dir(job), "SLURM job killed without warning, requeued, vs an uninterrupted run");
}

TEST_F(Slurm, AStepWhoseTasksNeverStartIsAnErrorNotASuccess) {
  const std::string job = submit(kGlove, "", "", "--hold");
  ASSERT_FALSE(job.empty());
  // PMIx's directory for step 0 of the job, made a file: slurmstepd cannot create it, the
  // tasks never start ("task 0 launch failed"), and srun returns 0 all the same.
  write_file(cluster_->tmpfs() + "/spmix_appdir_" + std::to_string(::getuid()) + "_" + job + ".0", "");
  ASSERT_EQ(cluster_->cmd("scontrol release " + job).status, 0);
  ASSERT_TRUE(cluster_->wait_state(job, "FAILED", 120s)) << diagnose(job);
  const std::string log = job_log(job);
  EXPECT_NE(log.find("launch failed"), std::string::npos) << "the step was meant not to start\n" << log;
  EXPECT_NE(log.find("error: srun returned 0, but loom did not finish: no " + run_dir(job) + "/eval.json"),
            std::string::npos)
      << log;
  EXPECT_NE(log.find("loom exited with status 1 "), std::string::npos) << log;
  EXPECT_EQ(log.find("requeued; the next run"), std::string::npos) << log;
  EXPECT_EQ(restarts(job), 0) << diagnose(job);
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
