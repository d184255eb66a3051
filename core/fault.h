#pragma once
// Fault injection for the kill tests (tests/fault): pauses at named points of loom's own
// work so that a SIGKILL aimed at that point lands there on any machine, however fast the
// work itself. Off unless the environment asks for it; costs one getenv per point.
#include <string>

namespace loom::fault {

// Note [Fault injection points]
// LOOM_FAULT_CHECKPOINT_PAUSE_MS=N stops rank 0 for N ms at one point of every checkpoint
// write; LOOM_FAULT_CHECKPOINT_PHASE names the point (default "fsync"):
//   data           the .tmp holds the layout, none of the bulk data yet
//   fsync          the data is written, not yet durable
//   rename         durable, still named .tmp
//   dirsync        renamed, the directory entry not yet durable
//   latest         the step file complete and visible, `latest` still names the previous one
//   latest-rename  latest.tmp written, not yet renamed over `latest`
// LOOM_FAULT_RESUME_PAUSE_MS=N stops every rank for N ms after a resume opened its
// checkpoint, before it reads the model (point "resume").
// At each pause the process prints one line to stderr,
//   loom fault injection: paused at PHASE of WHAT (pid PID)
// so that a test kills on that line (Note [Wait for the event, not for a time]).

// Pauses if `env_ms` is set to a positive number and, for checkpoint phases, `phase` is the
// one LOOM_FAULT_CHECKPOINT_PHASE names.
void checkpoint_pause(const char* phase, const std::string& what);
void resume_pause(const std::string& what);

}  // namespace loom::fault
