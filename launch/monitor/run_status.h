#pragma once
// RunStatus: what rank 0 shows about a command from its first second to its last. It owns
// the status server (status.port >= 0), up before the data stages start, and the stage the
// run is in (/status "stage": corpus, vocab, cooccur, tokens, train, export, eval, done);
// the Trainer's RunMonitor publishes its steps through the same server
// (MonitorOptions::server) instead of starting its own after the data stages.
//
// StageProgress: while a data stage runs (counting the vocabulary, the co-occurrences,
// tokenizing), a thread on rank 0 reads the work meter (core/work_meter.h) that the stage's
// loops advance and draws progress (a live bar on a terminal, a plain line every
// progress.interval_s otherwise) and /status's "stage" object from it. What rank 0 shows is
// its own share of the corpus: the ranks read shards of nearly equal bytes side by side, so
// rank 0's fraction stands for the job's, and nothing needs a collective while it runs.
//
//   RunStatus status(comm.rank(), display);          // one per command, before any stage
//   { StageProgress stage(comm.rank(), "vocab", display); ... build_vocab(...) ... }
//   status.set_stage("export");
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "launch/monitor/status_server.h"

namespace loom {

class Progress;

struct DisplayOptions {
  enum class Bar { kAuto, kOn, kOff } bar = Bar::kAuto;   // kAuto: a bar only on a terminal
  double interval_s = 10;            // plain-line period when the bar is off
  int status_port = -1;              // -1 off, 0 ephemeral, else this port
  std::string status_bind = "127.0.0.1";
};

// kAuto decides with Progress::terminal_for_bar() (Note [A bar under mpirun]).
bool bar_wanted(DisplayOptions::Bar bar);

class RunStatus {
 public:
  // Rank 0 starts the status server when status_port >= 0 (IoError/ConfigError as
  // StatusServer's). Other ranks hold nothing. One RunStatus per process at a time.
  RunStatus(int rank, DisplayOptions options);
  ~RunStatus();
  RunStatus(const RunStatus&) = delete;
  RunStatus& operator=(const RunStatus&) = delete;

  // The RunStatus of this process, or null (a command that made none: a stage still shows
  // progress, with no server to publish to).
  static RunStatus* current();

  StatusServer* server() { return server_.get(); }   // null: off, or not rank 0
  int status_port() const;                           // -1: off, or not rank 0
  // Publishes `stage` with no progress figures (export, eval, done).
  void set_stage(const std::string& stage);

 private:
  std::unique_ptr<StatusServer> server_;
};

class StageProgress {
 public:
  // Every rank (the meter is reset everywhere); rank 0 draws and publishes until the
  // destructor. `unit` names what the meter counts ("B": bytes of the corpus).
  StageProgress(int rank, std::string stage, const DisplayOptions& options, std::string unit = "B");
  ~StageProgress();
  StageProgress(const StageProgress&) = delete;
  StageProgress& operator=(const StageProgress&) = delete;

 private:
  void run();   // rank 0's drawing thread
  void show(bool final);

  std::string stage_;
  std::string unit_;
  std::unique_ptr<Progress> progress_;
  StatusServer* server_ = nullptr;
  std::chrono::steady_clock::time_point started_;
  std::chrono::steady_clock::time_point last_publish_{};
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace loom
