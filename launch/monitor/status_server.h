#pragma once
// StatusServer: a small HTTP endpoint on rank 0 that shows how a run is doing.
//   GET /status   JSON: the stage, step, total_steps, epoch, loss, learning rate, rates,
//                 eta_s, per-rank step times, the straggler, the last checkpoint, world
//                 size, uptime.
//   GET /metrics  Prometheus text exposition format: counters (loom_steps_total,
//                 loom_items_total, loom_checkpoints_written_total) and gauges (loom_loss, ...).
// Steps count steps done, from 1, as everywhere in loom (Note [Step numbers] in
// launch/monitor/metrics.h): "step": 0 means none has finished yet.
//   Other paths 404, other methods 405, malformed requests 400, oversized ones 431.
//
// Note [Status server isolation]
// A slow, malformed or hostile client must never stall or crash training. The training
// thread only swaps a shared_ptr to an immutable snapshot under a mutex (publish); all
// network work happens on the server's own thread (Boost.Asio, behind a pimpl). Every
// connection has one deadline for reading the request and writing the answer, requests are
// capped in size, at most max_connections are open at once, writes never raise SIGPIPE
// (MSG_NOSIGNAL), no exception leaves the thread, and stop() returns promptly with clients
// still connected. At the cap, a new connection sheds the longest idle one - a connection
// that has sent nothing yet, or one answered and lingering with nothing unread - so that
// idle connections cannot keep a request waiting in the listen backlog until their
// deadlines pass (300 idle ones once held a /status for 20 s); only when every open
// connection is busy reading a request or writing an answer do new ones wait in the backlog.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace loom {

// What the endpoint shows; published by RunMonitor on rank 0 after every step.
struct StatusSnapshot {
  std::string stage = "train";     // start, corpus, vocab, cooccur, tokens, train, export, eval, done
  int64_t stage_done = -1;         // a data stage's progress on rank 0 (-1 = none) ...
  int64_t stage_total = -1;        // ... out of this (-1 = unknown)
  std::string stage_unit;          // what they count ("B")
  double stage_eta_s = -1;
  int64_t step = 0;                // steps done (Note [Step numbers]); 0 = none yet
  int64_t total_steps = 0;         // 0 = unknown
  int64_t epoch = 0;               // epochs completed
  double lr = -1;                  // learning rate of the last step (-1 = not reported)
  double items_total = 0;          // items (unit) trained on by all ranks in this run
  int64_t checkpoints_written = 0; // by this run
  double loss = 0;                 // mean over ranks of the last step
  double items_per_s = 0;          // summed over ranks, recent window
  double steps_per_s = 0;
  double eta_s = -1;               // -1 = unknown
  std::string unit = "items";
  int world_size = 1;
  std::vector<double> rank_step_seconds;       // (world_size) last step, per rank
  std::vector<double> rank_mean_step_seconds;  // (world_size) recent window mean, per rank
  int straggler_rank = -1;         // -1 = none
  std::string last_checkpoint_path;  // empty = none yet
  int64_t last_checkpoint_step = -1;
  int stop_signal = 0;             // agreed stop request, 0 = none
  bool finished = false;
};

// The bodies of GET /status and GET /metrics. Pure: unit-tested directly.
std::string status_json(const StatusSnapshot& snapshot, double uptime_s);
std::string status_prometheus(const StatusSnapshot& snapshot, double uptime_s);

struct StatusServerOptions {
  std::string bind_address = "127.0.0.1";   // "0.0.0.0" exposes it to the network
  int port = 0;                             // 0 = ephemeral (see port())
  std::chrono::milliseconds io_timeout{5000};   // per connection: read request + write answer
  size_t max_request_bytes = 8192;          // request line + headers; larger gets 431
  int max_connections = 64;                 // open at once; idle ones are shed beyond it
};

class StatusServer {
 public:
  // Binds, listens and starts the server thread; logs "listening on http://ADDR:PORT".
  // Throws ConfigError for an unparsable address, IoError naming address and port when it
  // cannot listen (the port is busy, say).
  explicit StatusServer(StatusServerOptions options);
  ~StatusServer();   // stop()
  StatusServer(const StatusServer&) = delete;
  StatusServer& operator=(const StatusServer&) = delete;

  // Replaces what the endpoint shows. Thread-safe; never blocks on the network.
  void publish(StatusSnapshot snapshot);
  // A copy of what it shows now (to change one field and publish again). Thread-safe.
  StatusSnapshot snapshot() const;
  // The bound port (the actual one when options.port was 0).
  int port() const;
  // Closes the listener and every connection and joins the thread. Idempotent.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace loom
