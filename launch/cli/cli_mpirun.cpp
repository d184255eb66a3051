// `loom mpirun [MPIRUN OPTIONS] -- SUBCOMMAND ARGS...`: runs this loom under mpirun and
// returns the exit status a scheduler or a job script must see when the job is stopped.
//
// Note [Why loom mpirun]
// The ranks stop cleanly on SIGINT, SIGTERM and SIGUSR1 (checkpoint, exit 128 + N), and
// mpirun returns the ranks' status when they end on their own. But Open MPI 4.1's mpirun,
// sent SIGTERM or SIGINT itself, ends the job on its own (SIGTERM to the ranks, SIGKILL after
// a grace period) and exits 1 whatever the ranks return; no MCA setting changes that
// (`ess_base_forward_signals` refuses SIGTERM). It does forward SIGUSR1 to every rank and
// then returns their 138. A job script that reads 1 takes it for an error and does not
// requeue. So this launcher stands between the signal and mpirun:
//  - mpirun is its child, in its own process group, so a terminal's Ctrl-C (sent to the
//    foreground group) and a kill of the launcher's group reach only the launcher;
//  - the first SIGINT, SIGTERM, SIGHUP or SIGUSR1 becomes a SIGUSR1 for mpirun (every rank
//    stops at the next step boundary with a stop checkpoint and exits 138), and when mpirun
//    then exits 138 the launcher exits 128 + the signal it got (130, 143, 129, 138);
//  - a second SIGINT or SIGTERM is a hard stop, SIGTERM to mpirun (which ends the job as
//    above, the ranks gone within seconds: 2.5 s measured with rank 0 inside a checkpoint
//    write), and the launcher still exits 128 + the first signal, as it does when a third
//    SIGINT or SIGTERM has SIGKILLed mpirun;
//  - any other status is mpirun's own, returned as is (a rank's error 1, the watchdog's 3);
//    mpirun killed by signal N gives 128 + N.
// A signal the launcher was started with ignored (nohup's SIGHUP, SIGINT of a background
// job of a script) stays ignored, as it would for mpirun itself. mpirun gets SIGTERM if the
// launcher dies (PR_SET_PDEATHSIG), so a SIGKILLed launcher leaves no job running. Open MPI
// puts every rank in a process group of its own; when mpirun is killed the ranks lose it and
// end by themselves (measured: SIGKILL to mpirun inside a checkpoint write, nothing left
// 3 s later), so the launcher need not know them.
//
// Note [Standard input of mpirun in its own group]
// A process group that is not the terminal's foreground group is stopped (SIGTTIN) when it
// reads the terminal, and mpirun reads its standard input to pass it to rank 0. So a
// terminal on standard input is replaced by /dev/null (loom refuses a terminal as a corpus
// anyway); anything else (a pipe, a file: corpus.paths = ["-"]) is passed on. Writing to
// the terminal from the background group is allowed (unless `stty tostop`), so output and
// the progress bar appear as under a bare mpirun. Ctrl-Z (SIGTSTP) stops only the launcher.
#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <string>
#include <vector>

#include "core/error.h"
#include "launch/cli/cli.h"
#include "launch/run/signals.h"

namespace loom {
namespace {

// The signals that ask for a stop. SIGHUP is one: the terminal is gone, and mpirun (in its
// own group) would not get it.
constexpr int kStopSignals[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1};

void say(const std::string& text) {
  const std::string line = "loom mpirun: " + text + "\n";
  std::fputs(line.c_str(), stderr);
  std::fflush(stderr);
}

std::string signal_name(int sig) { return stop_signal_name(sig); }

// The first executable `name` in $PATH, or "" when there is none.
std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::string dirs = path == nullptr ? "" : path;
  size_t start = 0;
  while (start <= dirs.size()) {
    size_t end = dirs.find(':', start);
    if (end == std::string::npos) end = dirs.size();
    const std::string dir = end == start ? "." : dirs.substr(start, end - start);   // "" is the cwd
    const std::string candidate = dir + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(candidate.c_str(), X_OK) == 0)
      return candidate;
    start = end + 1;
  }
  return "";
}

// The stop signals this launcher answers: those not ignored when it started.
sigset_t handled_signals() {
  sigset_t set;
  sigemptyset(&set);
  for (int sig : kStopSignals) {
    struct sigaction old {};
    if (::sigaction(sig, nullptr, &old) == 0 && old.sa_handler == SIG_IGN) continue;
    sigaddset(&set, sig);
  }
  return set;
}

// Starts mpirun (argv prepared by the caller) in its own process group with the signal
// mask and dispositions the launcher had, standard input as Note [Standard input of mpirun
// in its own group] says. Between fork and exec only async-signal-safe calls: loom's
// libraries may have started threads (OpenBLAS does at load).
pid_t spawn(std::vector<char*>& argv, const sigset_t& waited, const sigset_t& old_mask) {
  const bool terminal_in = ::isatty(STDIN_FILENO) == 1;
  int answered[std::size(kStopSignals)];   // the stop signals the launcher answers
  size_t n_answered = 0;
  for (int sig : kStopSignals)
    if (sigismember(&waited, sig) == 1) answered[n_answered++] = sig;
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid != 0) {
    if (pid > 0) ::setpgid(pid, pid);   // also here: no signal may find it in our group
    return pid;
  }
  ::setpgid(0, 0);
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (::getppid() != parent) ::_exit(kExitError);   // the launcher died before prctl: nobody to answer
  if (terminal_in) {
    const int null = ::open("/dev/null", O_RDONLY);
    if (null >= 0) ::dup2(null, STDIN_FILENO);
  }
  ::signal(SIGPIPE, SIG_DFL);
  // A stop signal sent to the launcher's group before setpgid above is pending here, for
  // the launcher to answer: ignoring it discards it, instead of killing mpirun at exec.
  for (size_t i = 0; i < n_answered; ++i) ::signal(answered[i], SIG_IGN);
  ::sigprocmask(SIG_SETMASK, &old_mask, nullptr);
  for (size_t i = 0; i < n_answered; ++i) ::signal(answered[i], SIG_DFL);
  ::execv(argv[0], argv.data());
  const char msg[] = "loom mpirun: could not start mpirun (exec failed)\n";
  (void)!::write(STDERR_FILENO, msg, sizeof msg - 1);
  ::_exit(127);
}

// What the launcher has been asked so far.
struct StopState {
  int first = 0;   // the signal of the stop request, 0 while none
  int hard = 0;    // the signal that made it a hard stop, 0 while none
  bool killed = false;
};

void on_signal(int sig, pid_t mpirun, StopState& s) {
  if (s.first == 0) {
    s.first = sig;
    ::kill(mpirun, SIGUSR1);
    say(signal_name(sig) + " received, asked the ranks to stop at the next step (SIGUSR1 to mpirun); "
        "SIGINT or SIGTERM again ends the job at once");
  } else if (sig != SIGINT && sig != SIGTERM) {
    ::kill(mpirun, SIGUSR1);   // a repeated request: harmless, the ranks already stop
  } else if (s.hard == 0) {
    s.hard = sig;
    ::kill(mpirun, SIGTERM);
    say(signal_name(sig) + " again: ending the job now (SIGTERM to mpirun); the ranks may not finish their stop "
        "checkpoint (--resume auto takes the newest complete one)");
  } else if (!s.killed) {
    s.killed = true;
    ::kill(-mpirun, SIGKILL);   // mpirun's group: mpirun and any helper of its own
    say(signal_name(sig) + " a third time: SIGKILL to mpirun");
  }
}

// The launcher's status once mpirun ended with wait status `ws` (Note [Why loom mpirun]).
int status_after(int ws, const StopState& s) {
  if (WIFSIGNALED(ws)) {
    const int sig = WTERMSIG(ws);
    if (s.killed) {   // our own SIGKILL, asked for by a third signal
      say("mpirun killed; exiting " + std::to_string(128 + s.first) + " (" + signal_name(s.first) + ")");
      return 128 + s.first;
    }
    say("mpirun was killed by " + signal_name(sig) + "; exiting " + std::to_string(128 + sig));
    return 128 + sig;
  }
  const int code = WEXITSTATUS(ws);
  if (s.first == 0) return code;
  const int mine = 128 + s.first;
  if (s.hard != 0) {
    say("mpirun exited " + std::to_string(code) + " after the hard stop; exiting " + std::to_string(mine) + " (" +
        signal_name(s.first) + ")");
    return mine;
  }
  if (code == 128 + SIGUSR1) {
    say("the ranks stopped cleanly at a step boundary (mpirun exited 138); exiting " + std::to_string(mine) + " (" +
        signal_name(s.first) + ")");
    return mine;
  }
  say("mpirun exited " + std::to_string(code) + " after the stop request" +
      (code == 0 ? " (the job ended before it stopped)" : "") + "; exiting " + std::to_string(code));
  return code;
}

// Waits for mpirun, answering stop signals, and returns the launcher's status.
int supervise(pid_t mpirun, const sigset_t& waited) {
  StopState state;
  for (;;) {
    int ws = 0;
    const pid_t r = ::waitpid(mpirun, &ws, WNOHANG);
    if (r == mpirun) return status_after(ws, state);
    if (r < 0 && errno != EINTR) {
      say(std::string("lost mpirun (waitpid: ") + std::strerror(errno) + ")");
      return kExitError;
    }
    const timespec tick{1, 0};   // SIGCHLD wakes it; the tick only bounds a missed one
    const int sig = ::sigtimedwait(&waited, nullptr, &tick);
    if (sig > 0 && sig != SIGCHLD) on_signal(sig, mpirun, state);
  }
}

}  // namespace

int run_mpirun_launcher(const std::vector<std::string>& mpirun_options, const std::vector<std::string>& command) {
  const std::string mpirun = find_on_path("mpirun");
  if (mpirun.empty()) {
    const char* path = std::getenv("PATH");
    say(std::string("mpirun is not on PATH (PATH=") + (path == nullptr ? "" : path) +
        "): install Open MPI (Debian: apt-get install openmpi-bin) or put the directory of its mpirun on PATH");
    return 127;
  }
  std::error_code ec;
  const std::string self = std::filesystem::read_symlink("/proc/self/exe", ec).string();
  if (ec || self.empty()) {
    say("cannot find this loom binary (/proc/self/exe: " + ec.message() + ")");
    return kExitError;
  }
  std::vector<std::string> words = {mpirun};
  words.insert(words.end(), mpirun_options.begin(), mpirun_options.end());
  words.push_back(self);
  words.insert(words.end(), command.begin(), command.end());
  std::vector<char*> argv;
  for (std::string& w : words) argv.push_back(w.data());
  argv.push_back(nullptr);

  // Block what supervise() waits for before mpirun exists, so that no signal is lost
  // between the fork and the wait; the child restores the mask before exec.
  sigset_t waited = handled_signals(), old_mask;
  sigaddset(&waited, SIGCHLD);
  ::sigprocmask(SIG_BLOCK, &waited, &old_mask);
  ::signal(SIGPIPE, SIG_IGN);   // a closed stderr must not kill the launcher before mpirun ends
  const pid_t pid = spawn(argv, waited, old_mask);
  if (pid < 0) {
    say(std::string("fork failed: ") + std::strerror(errno));
    return kExitError;
  }
  return supervise(pid, waited);
}

void register_mpirun_command(CLI::App& app) {
  CLI::App* cmd = add_command(
      app, "mpirun", "run loom under mpirun; a stop signal gives a stop checkpoint and exit 130/143/138",
      "  loom mpirun [MPIRUN OPTIONS] -- SUBCOMMAND ARGS...\n"
      "  Runs `mpirun MPIRUN OPTIONS LOOM SUBCOMMAND ARGS...`: mpirun from PATH, this loom\n"
      "  binary as the program, the options passed on as written. Use it where a signal may\n"
      "  stop the job: Open MPI's mpirun, sent SIGTERM or SIGINT itself, ends the job and exits 1\n"
      "  whatever the ranks return, which a job script takes for an error. loom mpirun turns\n"
      "  the first SIGINT, SIGTERM, SIGHUP or SIGUSR1 it gets into a SIGUSR1 for mpirun, which\n"
      "  passes it to every rank: the ranks stop at the next step boundary, write a stop\n"
      "  checkpoint and exit 138, and loom mpirun exits 128 + its signal (130 SIGINT, 143\n"
      "  SIGTERM, 129 SIGHUP, 138 SIGUSR1). A second SIGINT or SIGTERM ends the job at once\n"
      "  (SIGTERM to mpirun: the stop checkpoint may be missing) and still exits 128 + the\n"
      "  first signal; a third SIGKILLs mpirun. Any other status is mpirun's, returned as\n"
      "  it is (1 a rank's error, 3 the watchdog...); mpirun killed by signal N gives\n"
      "  128 + N. mpirun runs in its own process group, so a terminal's Ctrl-C reaches\n"
      "  only loom mpirun (Ctrl-Z stops only loom mpirun, not the job). Standard input is\n"
      "  passed on (corpus.paths = [\"-\"]), except a terminal: mpirun then reads /dev/null.\n",
      "  loom mpirun -np 2 -- train examples/glove.toml\n"
      "  loom mpirun -np 2 -- train examples/glove.toml --resume auto\n"
      "  loom mpirun -np 16 --hostfile hosts --map-by node -- train RUN.toml --resume auto\n",
      "STATUS OF loom mpirun ITSELF\n"
      "  128+N  it got signal N and the ranks stopped cleanly (mpirun exited 138), or after a\n"
      "         hard stop; otherwise the status of mpirun, which is the ranks' (below)\n"
      "  127    mpirun is not on PATH\n");
  // The words are settled by main() before CLI11 parses (mpirun's options are not ours):
  // registered for `loom --help`, `loom mpirun --help` and the did-you-mean list.
  cmd->allow_extras();
}

}  // namespace loom
