#pragma once
// RunMonitor: what every training loop calls once per step, on every rank. It is a
// collective: one small allgather per step carries each rank's {step, step_seconds, items,
// loss, stop signal}. Rank 0 turns that into progress (launch/progress.h), metrics.jsonl
// (launch/metrics.h), the status endpoint (launch/status_server.h) and straggler warnings;
// every rank gets back the same stop decision, so all ranks stop after the same step.
//
//   RunMonitor monitor(comm, options);
//   for (int64_t step = start; step < total; ++step) {
//     ... train; measure this rank's step_seconds ...
//     if (int sig = monitor.end_step({step, loss, step_seconds, items}); sig != 0) {
//       save a checkpoint; monitor.finish(); return 128 + sig;
//     }
//   }
//   monitor.finish();
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "launch/monitor/status_server.h"

namespace loom {

class Communicator;
class MetricsWriter;
class Progress;

struct MonitorOptions {
  std::string run_dir;               // metrics.jsonl goes here (created if missing); rank 0 writes
  int64_t total_steps = 0;           // for percentage and ETA; 0 = unknown
  std::string unit = "items";        // what items/s counts ("tok", "B", "pairs")
  double progress_interval_s = 10;   // plain-line period when the bar is off
  enum class Bar { kAuto, kOn, kOff } bar = Bar::kAuto;   // kAuto: a bar only on a terminal
  int64_t metrics_every = 1;         // a metrics line when step % metrics_every == 0
  int status_port = -1;              // -1 off, 0 ephemeral, else this port
  std::string status_bind = "127.0.0.1";
  StatusServer* server = nullptr;    // rank 0: a server already up (RunStatus's, since the
                                     // run began); then status_port is not used and the
                                     // monitor publishes there without stopping it
};

// This rank's numbers for the step just finished.
struct StepReport {
  int64_t step = 0;           // index of the step (as given to Communicator::set_step), from 0
  double loss = 0;            // this rank's loss
  double step_seconds = 0;    // this rank's time for the step (compute + its own waits)
  int64_t items = 0;          // items (tokens, bytes, pairs) this rank processed in the step
  double weight = -1;         // examples behind `loss` (its mean): the step's loss is the
                              // weighted mean over ranks; < 0 on any rank: the plain mean
  int64_t epoch = 0;          // epochs completed after the step (rank 0's is shown)
  double lr = -1;             // learning rate the step used (rank 0's); < 0: not reported
};

class RunMonitor {
 public:
  // Straggler rule (Note [Stragglers] in run_monitor.cpp): over the last kWindow steps a
  // rank's mean step time is above 1.5x the median of the ranks' means and more than
  // 5 ms above it. The warning repeats at most every kStragglerWarnSeconds.
  static constexpr int kWindow = 20;
  static constexpr double kStragglerWarnSeconds = 60;

  // Every rank. Rank 0 opens metrics.jsonl and, when status_port >= 0, starts the status
  // server ("[r0/N][status] listening on http://127.0.0.1:PORT"). Throws IoError when
  // either fails (on rank 0 only; main's abort ends the other ranks).
  RunMonitor(Communicator& comm, MonitorOptions options);
  ~RunMonitor();   // finish(), errors swallowed
  RunMonitor(const RunMonitor&) = delete;
  RunMonitor& operator=(const RunMonitor&) = delete;

  // Collective: every rank, every step, in the same order. Returns the agreed stop signal
  // (the largest pending stop signal over ranks, see launch/signals.h), 0 = go on.
  // Throws CommError if the ranks report different step indices.
  int end_step(const StepReport& mine);

  // Shown in /status. Any rank may call it; only rank 0's value is shown. `written`: this
  // run wrote it (counted in loom_checkpoints_written_total); false for the one resumed from.
  void set_last_checkpoint(const std::string& path, int64_t step, bool written = true);

  // Final progress line, closes metrics.jsonl, stops the status server. Not a collective;
  // idempotent.
  void finish();

  // The lowest rank whose loss in the latest end_step is not finite (NaN, inf); -1 when
  // every rank's is. Read from end_step's allgather, so every rank gets the same answer.
  int non_finite_loss_rank() const;

  // The bound status port on rank 0; -1 on other ranks or when off.
  int status_port() const;
  // The rank named as straggler by the latest step (rank 0 only; -1 = none).
  int straggler_rank() const { return straggler_rank_; }

 private:
  using Clock = std::chrono::steady_clock;
  static constexpr int kFields = 6;   // step, step_seconds, items, loss, stop signal, weight

  void observe(const StepReport& report, int stop_signal);   // rank 0
  void update_stragglers(Clock::time_point now);

  Communicator& comm_;
  MonitorOptions options_;
  int rank_;
  int size_;
  bool finished_ = false;
  Clock::time_point started_;

  std::vector<double> mine_;        // (kFields)
  std::vector<double> all_;         // (size, kFields)

  // Rank 0 only.
  std::unique_ptr<MetricsWriter> metrics_;
  std::unique_ptr<Progress> progress_;
  std::unique_ptr<StatusServer> own_server_;   // started here when options.server is null
  StatusServer* server_ = nullptr;             // own_server_ or options.server
  std::vector<double> window_seconds_;   // (kWindow, size) ring of per-rank step seconds
  int64_t window_filled_ = 0;            // rows written so far (saturates at kWindow)
  int64_t window_next_ = 0;              // next row to overwrite
  std::vector<double> rate_time_;        // (kWindow + 1) ring: seconds since start ...
  std::vector<double> rate_items_;       // ... cumulative items at that time
  int64_t calls_ = 0;                    // end_step calls so far
  double items_total_ = 0;
  int straggler_rank_ = -1;
  Clock::time_point last_straggler_warning_{};
  bool warned_ = false;
  StatusSnapshot snapshot_;              // what rank 0 publishes (and shows at finish)
};

}  // namespace loom
