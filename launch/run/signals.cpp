#include "launch/run/signals.h"

#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <string>

#include "core/error.h"

namespace loom {
namespace {

// Note [Signal handler]
// The handler may only touch lock-free atomics. It keeps the first signal: the reason a run
// stopped is the first request, later ones (a second SIGTERM from a scheduler) change nothing.
std::atomic<int> g_pending_signal{0};
std::atomic<bool> g_installed{false};
static_assert(std::atomic<int>::is_always_lock_free, "signal handler needs a lock-free int");

extern "C" void loom_stop_handler(int signal) {
  int expected = 0;
  g_pending_signal.compare_exchange_strong(expected, signal, std::memory_order_relaxed);
}

void install_one(int signal, int extra_flags) {
  struct sigaction action;
  std::memset(&action, 0, sizeof(action));
  action.sa_handler = loom_stop_handler;
  sigemptyset(&action.sa_mask);
  // SA_RESTART: a stop request must not make blocking reads/writes elsewhere fail with EINTR.
  action.sa_flags = SA_RESTART | extra_flags;
  if (sigaction(signal, &action, nullptr) != 0) {
    throw Error(std::string("cannot install the stop handler for ") + stop_signal_name(signal) +
                ": " + std::strerror(errno));
  }
}

}  // namespace

void install_stop_handlers() {
  install_one(SIGINT, SA_RESETHAND);   // one-shot: a second Ctrl-C kills (see signals.h)
  install_one(SIGTERM, 0);
  install_one(SIGUSR1, 0);
  g_installed.store(true);
}

int pending_stop_signal() { return g_pending_signal.load(std::memory_order_relaxed); }

void clear_stop_request() {
  g_pending_signal.store(0, std::memory_order_relaxed);
  if (g_installed.load()) install_one(SIGINT, SA_RESETHAND);
}

const char* stop_signal_name(int signal) {
  switch (signal) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    case SIGUSR1: return "SIGUSR1";
    case SIGHUP: return "SIGHUP";
    case SIGKILL: return "SIGKILL";
    default: break;
  }
  static thread_local std::string name;
  name = "signal " + std::to_string(signal);
  return name.c_str();
}

}  // namespace loom
