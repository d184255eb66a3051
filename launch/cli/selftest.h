#pragma once
// The collective self-test: loom's main job until a model lands. Every rank runs every
// collective of the world communicator each step on integer-valued data whose result is
// known exactly, checks it, and reports through the RunMonitor (progress, metrics.jsonl,
// status server, stop requests, straggler detection). A wrong element ends the job with a
// DataError naming the collective, the index, the rank, the expected and the actual value.
namespace loom {

class Session;

// Returns the process exit status: 0 when every step passed, 128 + signal after a clean
// stop on SIGINT/SIGTERM/SIGUSR1.
int run_selftest(Session& session);

}  // namespace loom
