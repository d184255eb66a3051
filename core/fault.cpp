#include "core/fault.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

namespace loom::fault {
namespace {

long pause_ms(const char* env) {
  const char* v = std::getenv(env);
  return v == nullptr ? 0 : std::strtol(v, nullptr, 10);
}

void pause(long ms, const char* phase, const std::string& what) {
  std::fprintf(stderr, "loom fault injection: paused at %s of %s (pid %ld)\n", phase, what.c_str(),
               static_cast<long>(::getpid()));
  std::fflush(stderr);
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
}

}  // namespace

void checkpoint_pause(const char* phase, const std::string& what) {
  const long ms = pause_ms("LOOM_FAULT_CHECKPOINT_PAUSE_MS");
  if (ms <= 0) return;
  const char* chosen = std::getenv("LOOM_FAULT_CHECKPOINT_PHASE");
  if (std::strcmp(chosen != nullptr && *chosen != '\0' ? chosen : "fsync", phase) != 0) return;
  pause(ms, phase, what);
}

void resume_pause(const std::string& what) {
  if (const long ms = pause_ms("LOOM_FAULT_RESUME_PAUSE_MS"); ms > 0) pause(ms, "resume", what);
}

}  // namespace loom::fault
