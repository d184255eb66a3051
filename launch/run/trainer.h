#pragma once
// Trainer: the loop every model runs in. Per step: set the step on the communicator,
// model.train_step(), RunMonitor::end_step() (progress, metrics, status, the agreed stop
// signal), then the checkpoint triggers. It owns resuming (--resume auto|PATH) and the
// checkpoint cadence; the model owns what a step is.
//
// Checkpoint triggers (all decided identically on every rank):
//   every_steps    after each step s with (s + 1) % every_steps == 0
//   every_minutes  rank 0's clock since the last checkpoint, broadcast each step
//   at_end         after the last step
//   stop request   SIGINT/SIGTERM/SIGUSR1 on any rank: checkpoint, then exit 128 + signal
// A checkpoint written after s steps has meta.step = s; resuming from it runs step s next.
//
// Epochs: when a step moves model.epoch(), every rank sums the epoch's loss and examples
// (one allreduce of two doubles: the same collective on every rank, since epochs end at the
// same step everywhere), the epoch hook runs (on every rank; rank 0 may evaluate there, but
// the hook must not run collectives), and rank 0 logs "epoch E/N: loss L" plus the hook's
// note. The records are kept for the run's report.
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "launch/monitor/run_monitor.h"

namespace loom {

class Communicator;
class Model;
struct Config;

struct TrainerOptions {
  std::string checkpoint_dir;        // "" = checkpoints off
  int64_t every_steps = 0;           // 0 = off
  double every_minutes = 0;          // 0 = off
  bool at_end = true;
  int keep_last = 3;
  int64_t keep_every_steps = 0;
  WriteMode write_mode = WriteMode::kAuto;
  bool stop_on_write_error = true;   // false: warn and keep training
  std::string resume;                // "", "auto" or a checkpoint path
  std::string config_toml;           // the resolved config, stored in every checkpoint
  MonitorOptions monitor;
};

// Maps the [checkpoint] and [progress]/[status] sections onto TrainerOptions; relative
// checkpoint directories are inside run_dir.
TrainerOptions trainer_options(const Config& config, const std::string& run_dir);

// One completed epoch.
struct EpochRecord {
  int64_t epoch = 0;                     // 1-based: epochs completed
  double loss = 0;                       // mean loss per example over all ranks
  bool partial = false;                  // began before a resume, or the run ended inside it:
                                         // loss over the steps of this run in it
  std::string note;                      // the epoch hook's addition to the log line
  std::map<std::string, double> metrics; // the epoch hook's figures (rank 0), e.g. "analogy"
};

class Trainer {
 public:
  Trainer(Communicator& comm, Model& model, TrainerOptions options);

  // Called at every epoch end, on every rank, before the epoch line is logged.
  using EpochHook = std::function<void(EpochRecord& record)>;
  void on_epoch_end(EpochHook hook) { epoch_hook_ = std::move(hook); }
  const std::vector<EpochRecord>& epochs() const { return epochs_; }

  // Collective. Resumes if asked, trains to model.total_steps(), checkpoints as configured.
  // Returns 0 when training finished, 128 + signal after a clean stop (checkpoint written).
  int run();

  int64_t start_step() const { return start_step_; }
  // model.tokens_seen() when this run's training began (after any resume): the items this
  // run trained on are tokens_seen() minus this, and its rates divide those alone.
  int64_t tokens_at_start() const { return tokens_at_start_; }
  const std::string& last_checkpoint() const { return last_checkpoint_; }

 private:
  void resume_if_asked();
  // Writes a checkpoint after `steps_done` steps; false if it failed and training goes on.
  bool save(int64_t steps_done, const char* why);
  SaveRequest save_request(int64_t steps_done) const;   // what save() writes
  bool minutes_due();
  void stop_if_diverged(const RunMonitor& monitor, int64_t step) const;   // Note [A diverged run stops]
  std::string non_finite_parameter() const;
  void end_epoch(bool unfinished = false);


  Communicator& comm_;
  Model& model_;
  TrainerOptions options_;
  int64_t start_step_ = 0;
  int64_t tokens_at_start_ = 0;
  std::string last_checkpoint_;
  std::chrono::steady_clock::time_point last_save_time_;
  EpochHook epoch_hook_;
  std::vector<EpochRecord> epochs_;
  double epoch_loss_sum_ = 0, epoch_examples_ = 0;   // this rank, the epoch so far
  bool resumed_mid_epoch_ = false;
};

}  // namespace loom
