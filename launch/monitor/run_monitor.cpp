#include "launch/monitor/run_monitor.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include <fmt/format.h>

#include "core/error.h"
#include "core/log.h"
#include "core/tensor.h"
#include "dist/communicator.h"
#include "launch/monitor/metrics.h"
#include "launch/monitor/progress.h"
#include "launch/run/signals.h"

namespace loom {
namespace {

// Fields of the per-step allgather, one row of kFields doubles per rank. Doubles carry
// int64 step and item counts exactly up to 2^53.
constexpr int kStep = 0;
constexpr int kSeconds = 1;
constexpr int kItems = 2;
constexpr int kLoss = 3;
constexpr int kSignal = 4;
constexpr int kWeight = 5;

constexpr double kStragglerRatio = 1.5;
constexpr double kStragglerMarginSeconds = 0.005;
constexpr int64_t kStragglerMinSteps = 5;

bool show_bar(MonitorOptions::Bar bar) {
  switch (bar) {
    case MonitorOptions::Bar::kOn: return true;
    case MonitorOptions::Bar::kOff: return false;
    case MonitorOptions::Bar::kAuto: return Progress::terminal_for_bar();
  }
  return false;
}

ProgressState progress_state(const StatusSnapshot& s, double elapsed_s) {
  ProgressState p;
  p.step = s.step;   // steps done (Note [Step numbers])
  p.total_steps = s.total_steps;
  p.items_per_s = s.items_per_s;
  p.steps_per_s = s.steps_per_s;
  p.loss = s.loss;
  p.eta_s = s.eta_s;
  p.elapsed_s = elapsed_s;
  p.unit = s.unit;
  return p;
}

}  // namespace

RunMonitor::RunMonitor(Communicator& comm, MonitorOptions options)
    : comm_(comm), options_(std::move(options)), rank_(comm.rank()), size_(comm.size()),
      started_(Clock::now()), mine_(kFields, 0.0),
      all_(static_cast<size_t>(kFields) * static_cast<size_t>(size_), 0.0) {
  LOOM_CHECK(options_.metrics_every >= 1, ConfigError,
             "monitor: metrics_every must be at least 1, got " + std::to_string(options_.metrics_every));
  if (rank_ != 0) return;
  metrics_ = std::make_unique<MetricsWriter>(options_.run_dir);
  progress_ = std::make_unique<Progress>(show_bar(options_.bar), options_.progress_interval_s);
  if (options_.server != nullptr) {
    server_ = options_.server;
  } else if (options_.status_port >= 0) {
    StatusServerOptions server_options;
    server_options.bind_address = options_.status_bind;
    server_options.port = options_.status_port;
    own_server_ = std::make_unique<StatusServer>(std::move(server_options));
    server_ = own_server_.get();
  }
  window_seconds_.assign(static_cast<size_t>(kWindow) * static_cast<size_t>(size_), 0.0);
  rate_time_.assign(kWindow + 1, 0.0);    // entry 0: the start, 0 items
  rate_items_.assign(kWindow + 1, 0.0);
  snapshot_.stage = "train";
  snapshot_.total_steps = options_.total_steps;
  snapshot_.unit = options_.unit;
  snapshot_.world_size = size_;
  snapshot_.rank_step_seconds.assign(static_cast<size_t>(size_), 0.0);
  snapshot_.rank_mean_step_seconds.assign(static_cast<size_t>(size_), 0.0);
  if (server_) server_->publish(snapshot_);
}

RunMonitor::~RunMonitor() {
  try {
    finish();
  } catch (const Error& e) {
    log::warn("monitor", std::string("finishing the run monitor failed: ") + e.what());
  }
}

int RunMonitor::end_step(const StepReport& report) {
  mine_[kStep] = static_cast<double>(report.step);
  mine_[kSeconds] = report.step_seconds;
  mine_[kItems] = static_cast<double>(report.items);
  mine_[kLoss] = report.loss;
  mine_[kSignal] = pending_stop_signal();
  mine_[kWeight] = report.weight;
  comm_.allgather(Tensor::of(mine_.data(), kFields), Tensor::of(all_.data(), static_cast<int64_t>(all_.size())));
  int stop = 0;
  for (int r = 0; r < size_; ++r) {
    const double* row = &all_[static_cast<size_t>(r * kFields)];
    if (row[kStep] != mine_[kStep]) {
      throw CommError(fmt::format("monitor: rank {} reports step {} while rank {} reports step {}: "
                                  "the ranks' training loops are out of step",
                                  r, row[kStep], rank_, mine_[kStep]));
    }
    stop = std::max(stop, static_cast<int>(row[kSignal]));
  }
  if (rank_ == 0) observe(report, stop);
  return stop;
}

int RunMonitor::non_finite_loss_rank() const {
  for (int r = 0; r < size_; ++r)
    if (!std::isfinite(all_[static_cast<size_t>(r * kFields) + kLoss])) return r;
  return -1;
}

void RunMonitor::observe(const StepReport& report, int stop_signal) {
  const int64_t done = report.step + 1;   // steps done (Note [Step numbers])
  const Clock::time_point now = Clock::now();
  const double elapsed = std::chrono::duration<double>(now - started_).count();
  ++calls_;

  // This step across ranks.
  double loss_sum = 0, items = 0, seconds_sum = 0, weighted = 0, weights = 0;
  bool weighted_ok = true;
  double seconds_min = all_[kSeconds], seconds_max = all_[kSeconds];
  int slowest = 0;
  for (int r = 0; r < size_; ++r) {
    const double* row = &all_[static_cast<size_t>(r * kFields)];
    loss_sum += row[kLoss];
    items += row[kItems];
    weighted += row[kLoss] * std::max(row[kWeight], 0.0);
    weights += std::max(row[kWeight], 0.0);
    weighted_ok = weighted_ok && row[kWeight] >= 0;
    seconds_sum += row[kSeconds];
    seconds_min = std::min(seconds_min, row[kSeconds]);
    if (row[kSeconds] > seconds_max) {
      seconds_max = row[kSeconds];
      slowest = r;
    }
    snapshot_.rank_step_seconds[static_cast<size_t>(r)] = row[kSeconds];
  }
  items_total_ += items;

  // Rates over the last kWindow calls, on rank 0's clock (this includes the collectives).
  const size_t slots = rate_time_.size();
  const size_t slot = static_cast<size_t>(calls_) % slots;
  rate_time_[slot] = elapsed;
  rate_items_[slot] = items_total_;
  const int64_t span = std::min<int64_t>(calls_, static_cast<int64_t>(slots) - 1);
  const size_t oldest = static_cast<size_t>(calls_ - span) % slots;
  const double dt = elapsed - rate_time_[oldest];
  snapshot_.items_per_s = dt > 0 ? (items_total_ - rate_items_[oldest]) / dt : 0;
  snapshot_.steps_per_s = dt > 0 ? static_cast<double>(span) / dt : 0;

  snapshot_.step = done;
  snapshot_.epoch = report.epoch;
  snapshot_.lr = report.lr;
  snapshot_.items_total = items_total_;
  // The mean over every example of the step (ranks with uneven or empty slices weigh what
  // they hold), or the plain mean of the ranks' losses when a caller gives no weights.
  snapshot_.loss = weighted_ok && weights > 0 ? weighted / weights : loss_sum / size_;
  snapshot_.stop_signal = stop_signal;
  const int64_t remaining = options_.total_steps - done;
  snapshot_.eta_s = options_.total_steps > 0 && snapshot_.steps_per_s > 0
                        ? static_cast<double>(std::max<int64_t>(remaining, 0)) / snapshot_.steps_per_s
                        : -1;
  update_stragglers(now);

  if (done % options_.metrics_every == 0 || done == options_.total_steps) {
    MetricsRecord record;
    record.step = done;
    record.epoch = report.epoch;
    record.lr = report.lr;
    record.time_s = elapsed;
    record.loss = snapshot_.loss;
    record.items_per_s = snapshot_.items_per_s;
    record.steps_per_s = snapshot_.steps_per_s;
    record.step_seconds_min = seconds_min;
    record.step_seconds_mean = seconds_sum / size_;
    record.step_seconds_max = seconds_max;
    record.slowest_rank = slowest;
    metrics_->write(record);
  }
  progress_->update(progress_state(snapshot_, elapsed));
  if (server_) server_->publish(snapshot_);
}

// Note [Stragglers]
// Each rank reports its own step time (its compute and its own waits, measured before
// end_step's collective), so the rank that makes the others wait stands out. We keep the
// last kWindow steps per rank, compare each rank's mean with the (lower) median of the
// means, and name the slowest rank when it is > 1.5x the median and > 5 ms above it. With
// two ranks the lower median is the faster rank. Nothing is named before
// kStragglerMinSteps steps, so start-up noise does not count.
void RunMonitor::update_stragglers(Clock::time_point now) {
  const size_t n = static_cast<size_t>(size_);
  std::copy(snapshot_.rank_step_seconds.begin(), snapshot_.rank_step_seconds.end(),
            window_seconds_.begin() + static_cast<std::ptrdiff_t>(static_cast<size_t>(window_next_) * n));
  window_next_ = (window_next_ + 1) % kWindow;
  window_filled_ = std::min<int64_t>(window_filled_ + 1, kWindow);

  std::vector<double>& means = snapshot_.rank_mean_step_seconds;
  std::fill(means.begin(), means.end(), 0.0);
  for (int64_t row = 0; row < window_filled_; ++row)
    for (size_t r = 0; r < n; ++r) means[r] += window_seconds_[static_cast<size_t>(row) * n + r];
  for (double& m : means) m /= static_cast<double>(window_filled_);

  straggler_rank_ = -1;
  double median = 0;
  if (size_ > 1 && window_filled_ >= kStragglerMinSteps) {
    std::vector<double> sorted = means;
    std::sort(sorted.begin(), sorted.end());
    median = sorted[(n - 1) / 2];
    const auto slowest = static_cast<size_t>(std::max_element(means.begin(), means.end()) - means.begin());
    const double mean = means[slowest];
    if (mean > kStragglerRatio * median && mean - median > kStragglerMarginSeconds)
      straggler_rank_ = static_cast<int>(slowest);
  }
  snapshot_.straggler_rank = straggler_rank_;
  if (straggler_rank_ < 0) return;
  const double since = std::chrono::duration<double>(now - last_straggler_warning_).count();
  if (warned_ && since < kStragglerWarnSeconds) return;
  warned_ = true;
  last_straggler_warning_ = now;
  log::warn("monitor", fmt::format("rank {} is a straggler: mean step {:.1f} ms over the last {} "
                                   "steps, median over ranks {:.1f} ms",
                                   straggler_rank_, 1e3 * means[static_cast<size_t>(straggler_rank_)],
                                   window_filled_, 1e3 * median));
}

void RunMonitor::set_last_checkpoint(const std::string& path, int64_t step, bool written) {
  if (rank_ != 0) return;
  snapshot_.last_checkpoint_path = path;
  snapshot_.last_checkpoint_step = step;
  if (written) ++snapshot_.checkpoints_written;
  if (server_) server_->publish(snapshot_);
}

void RunMonitor::finish() {
  if (finished_) return;
  finished_ = true;
  if (rank_ != 0) return;
  snapshot_.finished = true;
  const double elapsed = std::chrono::duration<double>(Clock::now() - started_).count();
  if (calls_ > 0) progress_->finish(progress_state(snapshot_, elapsed));
  if (server_) server_->publish(snapshot_);
  server_ = nullptr;
  own_server_.reset();   // closes the listener and every client connection (a server of
                         // options.server stays up: its owner takes it down)
  metrics_->close();
}

int RunMonitor::status_port() const { return server_ ? server_->port() : -1; }

}  // namespace loom
