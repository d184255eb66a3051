#include "tests/support/test_support.h"

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/inotify.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace loom::test {

TempDir::TempDir() {
  const char* base = std::getenv("TMPDIR");
  std::string tmpl = std::string(base && *base ? base : "/tmp") + "/loom-test.XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed: " + tmpl);
  path_ = buf.data();
}

TempDir::~TempDir() {
  const char* keep = std::getenv("LOOM_KEEP_TEST_DIRS");
  if (keep && std::strcmp(keep, "1") == 0) return;
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string loom_binary() {
  const char* p = std::getenv("LOOM_BINARY");
  if (p == nullptr || *p == '\0') throw std::runtime_error("LOOM_BINARY is not set (run through ctest)");
  return p;
}

std::vector<std::string> mpirun_prefix(int np) {
  return {"mpirun", "-np", std::to_string(np), "--oversubscribe", "--bind-to", "none",
          "--mca", "mpi_yield_when_idle", "1"};
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  if (!out) throw std::runtime_error("cannot write " + path);
}

Process::Process(std::vector<std::string> argv, std::vector<std::string> extra_env) {
  out_path_ = dir_.file("stdout");
  err_path_ = dir_.file("stderr");
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    setpgid(0, 0);
    int out = open(out_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(err_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int in = open("/dev/null", O_RDONLY);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    for (const std::string& kv : extra_env) putenv(strdup(kv.c_str()));
    std::vector<char*> args;
    for (std::string& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    execvp(args[0], args.data());
    _exit(127);
  }
  setpgid(pid_, pid_);
}

Process::~Process() {
  if (!exited_ && pid_ > 0) {
    kill(-pid_, SIGKILL);
    kill(pid_, SIGKILL);
    int st = 0;
    waitpid(pid_, &st, 0);
  }
}

bool Process::wait_for(std::chrono::milliseconds timeout) {
  if (exited_) return true;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    int st = 0;
    pid_t r = waitpid(pid_, &st, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      status_ = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return true;
    }
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

bool Process::running() { return !wait_for(std::chrono::milliseconds(0)); }

void Process::signal(int sig) {
  if (!exited_) kill(pid_, sig);
}

void Process::signal_group(int sig) {
  if (!exited_) kill(-pid_, sig);
}

std::string Process::out() const { return read_file(out_path_); }
std::string Process::err() const { return read_file(err_path_); }

RunResult run(const std::vector<std::string>& argv, std::chrono::milliseconds timeout,
              const std::vector<std::string>& extra_env) {
  Process p(argv, extra_env);
  RunResult r;
  if (!p.wait_for(timeout)) {
    r.timed_out = true;
    p.signal_group(SIGKILL);
    p.wait_for(std::chrono::seconds(10));
  }
  r.status = p.exit_status();
  r.out = p.out();
  r.err = p.err();
  return r;
}

std::vector<pid_t> child_pids(pid_t pid) {
  std::vector<pid_t> kids;
  DIR* d = opendir("/proc");
  if (d == nullptr) return kids;
  while (dirent* e = readdir(d)) {
    char* end = nullptr;
    long p = std::strtol(e->d_name, &end, 10);
    if (*end != '\0' || p <= 0) continue;
    std::ifstream stat("/proc/" + std::string(e->d_name) + "/stat");
    std::string line;
    std::getline(stat, line);
    size_t close = line.rfind(')');
    if (close == std::string::npos) continue;
    std::istringstream rest(line.substr(close + 2));
    char state = 0;
    long ppid = 0;
    rest >> state >> ppid;
    if (ppid == pid) kids.push_back(static_cast<pid_t>(p));
  }
  closedir(d);
  return kids;
}

std::vector<pid_t> descendants_named(pid_t pid, const std::string& name) {
  std::vector<pid_t> found;
  std::vector<pid_t> frontier{pid};
  while (!frontier.empty()) {
    pid_t p = frontier.back();
    frontier.pop_back();
    for (pid_t c : child_pids(p)) {
      std::string comm = read_file("/proc/" + std::to_string(c) + "/comm");
      while (!comm.empty() && comm.back() == '\n') comm.pop_back();
      if (comm == name) found.push_back(c);
      frontier.push_back(c);
    }
  }
  return found;
}

namespace {

// The state letter of /proc/<pid>/stat ("pid (comm) S ..."): R, S, D, Z, ...; '?' if gone.
char process_state(pid_t pid) {
  std::string stat = read_file("/proc/" + std::to_string(pid) + "/stat");
  size_t close = stat.rfind(')');
  return close != std::string::npos && close + 2 < stat.size() ? stat[close + 2] : '?';
}

}  // namespace

std::string describe_descendants(pid_t pid) {
  std::string out;
  std::vector<pid_t> frontier{pid};
  while (!frontier.empty()) {
    pid_t p = frontier.back();
    frontier.pop_back();
    std::string dir = "/proc/" + std::to_string(p);
    std::string comm = read_file(dir + "/comm");
    while (!comm.empty() && comm.back() == '\n') comm.pop_back();
    out += "[" + std::to_string(p) + " " + comm + " " + process_state(p) + " " + read_file(dir + "/wchan") + "] ";
    for (pid_t c : child_pids(p)) frontier.push_back(c);
  }
  return out;
}

void kill_one_rank(Process& p, const std::string& rank_name, std::mt19937& gen) {
  const std::vector<pid_t> ranks = descendants_named(p.pid(), rank_name);
  if (ranks.empty()) {
    p.signal_group(SIGKILL);
    return;
  }
  kill(ranks[gen() % ranks.size()], SIGKILL);
}

bool wait_for_checkpoint_write(const std::string& dir, Process& p, std::chrono::milliseconds limit) {
  std::filesystem::create_directories(dir);
  const int fd = inotify_init1(IN_NONBLOCK);
  const int wd = inotify_add_watch(fd, dir.c_str(), IN_CREATE);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  bool seen = false;
  char buf[4096];
  while (!seen && std::chrono::steady_clock::now() < deadline && p.running()) {
    const ssize_t n = read(fd, buf, sizeof buf);
    for (ssize_t off = 0; n > 0 && off < n;) {
      auto* ev = reinterpret_cast<inotify_event*>(buf + off);
      const std::string name = ev->len ? ev->name : "";
      if (name.ends_with(".h5.tmp")) seen = true;
      off += static_cast<ssize_t>(sizeof(inotify_event) + ev->len);
    }
    if (!seen) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  inotify_rm_watch(fd, wd);
  close(fd);
  return seen;
}

::testing::AssertionResult wait_for_killed_job(Process& p, const std::string& rank_name,
                                               std::chrono::milliseconds limit) {
  auto failed = [&] {
    return ::testing::AssertionFailure() << "the job did not end after a rank was killed; still running: "
                                         << describe_descendants(p.pid()) << "\nits stderr:\n" << p.err();
  };
  if (p.wait_for(limit)) return ::testing::AssertionSuccess();
  for (pid_t rank : descendants_named(p.pid(), rank_name))
    if (char state = process_state(rank); state != 'Z' && state != '?') return failed();
  if (p.err().find("mpirun noticed that process rank") == std::string::npos) return failed();
  std::printf("every rank ended and mpirun reported the kill, but mpirun itself hung (Open MPI 4.1's "
              "teardown race, README \"Exit status\"); ending it\n");
  p.signal_group(SIGKILL);
  return p.wait_for(std::chrono::seconds(10)) ? ::testing::AssertionSuccess() : failed();
}

}  // namespace loom::test
