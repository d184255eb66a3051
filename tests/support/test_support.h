#pragma once
// Helpers shared by loom's tests: temporary directories, child processes with captured
// output and deadlines, the path of the `loom` binary and of mpirun.
#include <sys/types.h>

#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <string>
#include <vector>

namespace loom::test {

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

// SIGKILLs one of `p`'s descendants named `rank_name`, chosen by `gen`; the whole process
// group when there is none (the job is still starting up).
void kill_one_rank(Process& p, const std::string& rank_name, std::mt19937& gen);

// Waits until a checkpoint write is in progress (a *.h5.tmp appears in `dir`, created if
// missing); false if `p` ended first or `limit` passed.
bool wait_for_checkpoint_write(const std::string& dir, Process& p, std::chrono::milliseconds limit);

// Waits up to `limit` for a job `p` (mpirun or a single process) to end after one of its
// ranks, processes named `rank_name`, was killed. On failure the message lists what still
// runs (describe_descendants) and the job's stderr. Open MPI 4.1's mpirun can hang in its own
// teardown when a rank is killed while it connects to mpirun's PMIx server inside MPI_Init
// (twice in ~240 kills timed 0-500 ms after launch on a 2-core host, once in CI): it prints
// "mpirun noticed that process rank N ... exited on signal 9", every rank is gone, and
// mpirun waits on a futex without reaping the killed one. That is mpirun, not loom: then,
// and only when no rank is still running (zombies are dead) and mpirun has reported the
// death, this says so on stdout, kills mpirun's process group and succeeds.
::testing::AssertionResult wait_for_killed_job(Process& p, const std::string& rank_name,
                                               std::chrono::milliseconds limit);

}  // namespace loom::test
