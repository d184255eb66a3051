#pragma once
// Helpers shared by loom's tests: temporary directories, child processes with captured
// output and deadlines, the path of the `loom` binary and of mpirun.
#include <sys/types.h>

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace loom::test {

// Note [Skips that fail under CI]
// A test whose environment is missing (not root, no h5py or gensim, `unshare` refused,
// peer memory refused, a private SLURM cluster or netns hosts that did not start, the
// Python references absent) cannot say anything about loom. On a developer's machine it
// skips visibly: GTEST_SKIP with the reason, which ctest lists. Under CI (the environment
// variable CI set and not "false" or "0": .ci/run sets CI=true unless the CI system has set
// it already, then runs scripts/test.sh) the environment is part of the contract, so the
// same test fails with the same reason instead of passing silently. LOOM_SKIP_OR_FAIL is the one way to write such a skip. The single
// exception is a GPU: CI machines have none, so LOOM_SKIP_NO_GPU skips there too and says
// so. Skips that are part of a test's design (a check that only means something at world
// size 1, an opt-in measurement) are plain GTEST_SKIPs.

// ctest counts a binary as skipped, not passed, when its output holds kEnvironmentSkipMarker
// (SKIP_REGULAR_EXPRESSION in cmake/LoomTesting.cmake). The marker is printed at exit only
// when no test failed (on any rank: tests/support/mpi_gtest_main.cpp), so it never hides a
// failure; the skipped tests and their reasons are in the test's output.

// True when CI is set to anything but "", "false" or "0".
bool under_ci();
inline constexpr const char* kEnvironmentSkipMarker = "LOOM-ENVIRONMENT-SKIP";
// Counts a skip for a missing environment (the macros below call it).
void note_environment_skip();
int environment_skips();
// Prints the marker line when `skips` > 0; called once per process (at exit, or by the MPI
// main on rank 0 with the counts of every rank, which then calls disable_... on every rank).
void print_environment_skip_marker(int skips);
void disable_environment_skip_marker_at_exit();

// Skips the current test (or fails it under CI) because its environment is missing;
// `why` (anything that converts to std::string) names what is missing and how to get it.
// Like GTEST_SKIP and FAIL it returns from the current void function.
#define LOOM_SKIP_OR_FAIL(why)                                                                 \
  do {                                                                                         \
    const std::string loom_why_ = (why);                                                       \
    if (::loom::test::under_ci()) FAIL() << "environment missing under CI (CI is set): " << loom_why_; \
    ::loom::test::note_environment_skip();                                                     \
    GTEST_SKIP() << loom_why_ << " (CI would fail here)";                                        \
  } while (0)

// The one skip allowed under CI: no GPU (Note [Skips that fail under CI]).
#define LOOM_SKIP_NO_GPU(why)                                                                  \
  do {                                                                                         \
    ::loom::test::note_environment_skip();                                                     \
    GTEST_SKIP() << "no GPU, which is allowed even under CI: " << (why);                       \
  } while (0)

// A fresh directory under $TMPDIR (or /tmp), removed with its contents on destruction
// unless LOOM_KEEP_TEST_DIRS=1.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

// The `loom` binary under test ($LOOM_BINARY, set by ctest).
std::string loom_binary();
// The mpirun program and the flags ctest uses (oversubscribe, no binding, yield when idle).
std::vector<std::string> mpirun_prefix(int np);
// `loom args...`, under mpirun_prefix(np) when np > 1.
std::vector<std::string> loom_cmd(int np, const std::vector<std::string>& args);

std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& text);

// A child process in its own process group, stdout and stderr captured to files.
class Process {
 public:
  explicit Process(std::vector<std::string> argv, std::vector<std::string> extra_env = {});
  ~Process();  // kills the process group if still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  // Waits up to `timeout`; returns true if it exited (then exit_status() is valid).
  bool wait_for(std::chrono::milliseconds timeout);
  bool running();
  // Exit status as a shell reports it: the code, or 128 + signal if killed.
  int exit_status() const { return status_; }
  void signal(int sig);            // to the process itself
  void signal_group(int sig);      // to its whole process group
  std::string out() const;         // captured stdout so far
  std::string err() const;         // captured stderr so far

 private:
  pid_t pid_ = -1;
  int status_ = -1;
  bool exited_ = false;
  std::string out_path_;
  std::string err_path_;
  TempDir dir_;
};

// Runs argv to completion (or kills it after `timeout`); returns {status, stdout+stderr}.
struct RunResult {
  int status = -1;
  bool timed_out = false;
  std::string out;
  std::string err;
};
RunResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
              const std::vector<std::string>& extra_env = {});

// Child pids of `pid` (from /proc), for finding the ranks under an mpirun.
std::vector<pid_t> child_pids(pid_t pid);
// All descendants of `pid` whose /proc/<pid>/comm equals `name`.
std::vector<pid_t> descendants_named(pid_t pid, const std::string& name);
// "pid comm state wchan" for `pid` and each of its descendants, for failure messages.
std::string describe_descendants(pid_t pid);

// The raw Wikipedia beside the repository (LOOM_SHARED_DATA/enwiki-raw100m.txt.xz, optional
// data that CI lacks), or "" when it is absent: the tokenizer tests against Hugging Face
// then skip visibly.
std::string raw_wikipedia_xz();
// Its first N bytes (N from the environment variable `bytes_env`, else 3 MB: more for a
// deeper check by hand), cut at the last line end and split into the blank-line separated
// articles; `text_bytes` gets the bytes kept. Fails the test if the file gives too little.
void read_raw_wikipedia(const std::string& xz, const char* bytes_env, std::vector<std::string>* articles,
                        size_t* text_bytes);

// `s` as one single-quoted shell word.
std::string quoted(const std::string& s);

// Note [No process left behind]
// Every job a kill or signal test starts has its own directory (a TempDir, or a run
// directory inside one), which every process of the job holds in its command line
// (run.dir=..., --pid-dir ...). After the job has ended, /proc is searched for any live
// process (a zombie is dead) whose command line holds that directory as a whole path:
// mpirun, a rank, a helper it started. TempDir names are unique, so tests running side by
// side never see each other's processes.

// A process's state letter from /proc/PID/stat ('R', 'S', 'T', 'Z'...); '?' when it is gone.
char state_of(const std::string& pid);
// "pid state cmdline" of each live process whose command line holds `marker` as a whole
// path (not as the start of a longer name), one a line.
std::string processes_holding(const std::string& marker);
// Waits briefly for what a finished job's launcher may still be reaping, then fails
// listing what is left.
void expect_nothing_left(const std::string& marker, const std::string& what);

// Waits until `n` processes named `rank_name` run under `p` (itself, when `p` is named so
// and n is 1: a job without mpirun); returns their pids, empty if `limit` passed first. A
// kill aimed at an event is then sent without searching /proc after the event.
std::vector<pid_t> wait_for_ranks(Process& p, const std::string& rank_name, size_t n, std::chrono::milliseconds limit);

// SIGKILLs one of `p`'s descendants named `rank_name`, chosen by `gen`; the whole process
// group when there is none (the job is still starting up).
void kill_one_rank(Process& p, const std::string& rank_name, std::mt19937& gen);

// Note [Wait for the event, not for a time]
// On a loaded 2-core machine a fixed sleep before a signal is either too short (the event
// has not happened: the test tests nothing, or fails) or needlessly long. Tests wait for
// what they need to have happened - a file, a line of output, a state - with a generous
// deadline that only a hung process reaches, and fail naming what they waited for.

// Polls `ready` every 10 ms until it returns true (true), `limit` passes or `p` (when not
// null) has ended first (false).
bool wait_until(const std::function<bool()>& ready, std::chrono::milliseconds limit, Process* p = nullptr);
// Waits until `p`'s stderr (or stdout, when `on_stdout`) contains `text`.
bool wait_for_output(Process& p, const std::string& text, std::chrono::milliseconds limit, bool on_stdout = false);

// Waits until a checkpoint write is in progress (a *.h5.tmp appears in `dir`, created if
// missing; its path in *tmp_path when not null); false if `p` ended first or `limit` passed.
bool wait_for_checkpoint_write(const std::string& dir, Process& p, std::chrono::milliseconds limit,
                               std::string* tmp_path = nullptr);

// What a job that was killed left of an unfinished checkpoint write in `dir`: "" when none,
// else what shows it - a step_*.h5.tmp (killed while the data was written or made durable,
// before the rename), a latest.tmp (while `latest` was replaced), or `latest` naming an
// older file than the newest step_*.h5 (after the rename, before `latest`). A kill counts
// as inside a write only by this evidence, never by a .tmp merely seen while it ran.
std::string unfinished_checkpoint_write(const std::string& dir);

// What a kill test makes of mpirun hanging after its ranks are gone (see wait_for_killed_job).
enum class MpirunTeardownHang {
  kFailure,                 // any hang is a failure
  kToleratedOpenMpi41Race,  // the test kills ranks at random instants, MPI_Init included, and says so
};

// Waits up to `limit` for a job `p` (mpirun or a single process) to end after one of its
// ranks, processes named `rank_name`, was killed. A job still running then is a failure whose
// message lists what still runs (describe_descendants) and the job's stderr.
// One exception, only where the test passes kToleratedOpenMpi41Race: Open MPI 4.1's mpirun
// can hang in its own teardown when a rank is killed while it connects to mpirun's PMIx
// server inside MPI_Init (twice in ~240 kills timed 0-500 ms after launch on a 2-core host,
// once in CI): it prints "mpirun noticed that process rank N ... exited on signal 9", every
// rank is gone, and mpirun waits on a futex without reaping the killed one. That is mpirun,
// not loom: then, and only when mpirun is Open MPI 4.1, no rank is still running (zombies are
// dead) and mpirun has reported the death, this says so on stdout and in the test's XML
// record (property mpirun_teardown_hang), kills mpirun's process group and succeeds.
::testing::AssertionResult wait_for_killed_job(Process& p, const std::string& rank_name,
                                               std::chrono::milliseconds limit, MpirunTeardownHang hang);

}  // namespace loom::test
