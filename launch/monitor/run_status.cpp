#include "launch/monitor/run_status.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <utility>

#include "core/log.h"
#include "core/work_meter.h"
#include "launch/monitor/progress.h"

namespace loom {
namespace {

std::atomic<RunStatus*> g_current{nullptr};

constexpr auto kBarPeriod = std::chrono::milliseconds(200);
constexpr double kPublishSeconds = 0.5;   // /status during a stage: fresh enough, cheap

}  // namespace

bool bar_wanted(DisplayOptions::Bar bar) {
  switch (bar) {
    case DisplayOptions::Bar::kOn: return true;
    case DisplayOptions::Bar::kOff: return false;
    case DisplayOptions::Bar::kAuto: return Progress::terminal_for_bar();
  }
  return false;
}

RunStatus::RunStatus(int rank, DisplayOptions options) {
  if (rank == 0 && options.status_port >= 0) {
    StatusServerOptions o;
    o.bind_address = options.status_bind;
    o.port = options.status_port;
    server_ = std::make_unique<StatusServer>(std::move(o));
    StatusSnapshot s;
    s.stage = "start";
    server_->publish(std::move(s));
  }
  g_current.store(this);
}

RunStatus::~RunStatus() {
  RunStatus* self = this;
  g_current.compare_exchange_strong(self, nullptr);
  if (server_) {
    StatusSnapshot s = server_->snapshot();
    s.stage = "done";
    s.finished = true;
    server_->publish(std::move(s));
  }
}

RunStatus* RunStatus::current() { return g_current.load(); }

int RunStatus::status_port() const { return server_ ? server_->port() : -1; }

void RunStatus::set_stage(const std::string& stage) {
  if (!server_) return;
  StatusSnapshot s = server_->snapshot();
  s.stage = stage;
  s.stage_done = s.stage_total = -1;
  s.stage_unit.clear();
  server_->publish(std::move(s));
}

StageProgress::StageProgress(int rank, std::string stage, const DisplayOptions& options, std::string unit)
    : stage_(std::move(stage)), unit_(std::move(unit)), started_(std::chrono::steady_clock::now()) {
  work_meter::reset();
  if (rank != 0) return;
  RunStatus* status = RunStatus::current();
  server_ = status != nullptr ? status->server() : nullptr;
  progress_ = std::make_unique<Progress>(bar_wanted(options.bar), options.interval_s);
  show(false);   // /status names the stage at once
  thread_ = std::thread([this] { run(); });
}

StageProgress::~StageProgress() {
  // Fault injection for the tests (tests/e2e/terminal_test.cpp): LOOM_FAULT_STAGE_PAUSE_MS
  // holds a finished stage open that long, so that a test can ask /status during the stage
  // on a fast machine too, and find its whole work done (done == total).
  if (const char* pause = std::getenv("LOOM_FAULT_STAGE_PAUSE_MS"))
    std::this_thread::sleep_for(std::chrono::milliseconds(std::atoll(pause)));
  if (!thread_.joinable()) return;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
  }
  wake_.notify_all();
  thread_.join();
  show(true);
}

void StageProgress::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  while (!wake_.wait_for(lock, kBarPeriod, [this] { return stop_; })) show(false);
}

// The meter's reading as progress (its own throttle: the bar 5 times a second, plain lines
// every interval_s) and, every kPublishSeconds, as /status's stage.
void StageProgress::show(bool final) {
  const auto now = std::chrono::steady_clock::now();
  const double elapsed = std::chrono::duration<double>(now - started_).count();
  const work_meter::Reading r = work_meter::read();
  StageProgressState p;
  p.stage = stage_;
  p.unit = unit_;
  p.done = r.done;
  p.total = r.total;
  p.elapsed_s = elapsed;
  p.per_s = elapsed > 0 ? static_cast<double>(r.done) / elapsed : -1;
  p.eta_s = p.per_s > 0 && r.total > 0 ? static_cast<double>(std::max<int64_t>(r.total - r.done, 0)) / p.per_s : -1;
  if (final) {
    // The stage logs its own summary; a bar is taken down rather than left at 100 %.
    progress_->clear_line();
  } else if (elapsed >= 0.5) {
    progress_->update_stage(p);   // not for stages that end at once (a reused vocabulary)
  }
  if (server_ == nullptr) return;
  if (!final && std::chrono::duration<double>(now - last_publish_).count() < kPublishSeconds) return;
  last_publish_ = now;
  StatusSnapshot s = server_->snapshot();
  s.stage = stage_;
  s.stage_done = r.done;
  s.stage_total = r.total;
  s.stage_unit = unit_;
  s.stage_eta_s = p.eta_s;
  server_->publish(std::move(s));
}

}  // namespace loom
