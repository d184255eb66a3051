#include "dist/watchdog.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <memory>

#include "core/error.h"
#include "core/log.h"

namespace loom {

std::string OpInfo::describe() const {
  std::string s = std::string(op) + " #" + std::to_string(seq);
  if (reduce != nullptr || numel > 0) {
    s += " (";
    if (reduce != nullptr) s += std::string(reduce) + ", ";
    s += std::to_string(numel) + " x " + dtype_name(dtype) + ")";
  }
  s += step >= 0 ? " at step " + std::to_string(step) : std::string(" outside the step loop");
  s += " on rank " + std::to_string(rank) + "/" + std::to_string(size);
  return s;
}

Watchdog::Guard& Watchdog::Guard::operator=(Guard&& other) noexcept {
  if (this != &other) {
    release();
    owner_ = other.owner_;
    slot_ = other.slot_;
    other.owner_ = nullptr;
  }
  return *this;
}

void Watchdog::Guard::release() {
  if (owner_ != nullptr) owner_->disarm(slot_);
  owner_ = nullptr;
}

Watchdog::Watchdog(ExplainFn explain, AbortFn abort)
    : explain_(std::move(explain)), abort_(std::move(abort)) {
  LOOM_ASSERT(abort_ != nullptr, "Watchdog needs an abort function");
  slots_.reserve(16);
  next_wake_ = std::chrono::steady_clock::now();
  thread_ = std::thread([this] { run(); });
}

Watchdog::~Watchdog() { stop(); }

void Watchdog::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

Watchdog::Guard Watchdog::arm(const OpInfo& info, std::chrono::milliseconds timeout) {
  auto now = std::chrono::steady_clock::now();
  bool notify = false;
  size_t index = 0;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (timeout.count() <= 0) timeout = default_timeout_;
    while (index < slots_.size() && slots_[index].active) ++index;
    if (index == slots_.size()) slots_.emplace_back();
    Slot& slot = slots_[index];
    slot.active = true;
    slot.fired = false;
    slot.info = info;
    slot.timeout = timeout;
    slot.deadline = now + timeout;
    // The thread ticks every kTick; wake it only when it would otherwise sleep past us.
    notify = slot.deadline < next_wake_;
  }
  if (notify) wake_.notify_one();
  return Guard(this, index);
}

void Watchdog::disarm(size_t slot) {
  std::lock_guard<std::mutex> lock(mutex_);
  LOOM_ASSERT(slot < slots_.size() && slots_[slot].active, "watchdog slot disarmed twice");
  slots_[slot].active = false;
}

void Watchdog::set_default_timeout(std::chrono::milliseconds timeout) {
  LOOM_CHECK(timeout.count() > 0, Error,
             "watchdog: the default collective timeout must be positive (comm.timeout_s), got " +
                 std::to_string(timeout.count()) + " ms");
  std::lock_guard<std::mutex> lock(mutex_);
  default_timeout_ = timeout;
}

std::chrono::milliseconds Watchdog::default_timeout() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return default_timeout_;
}

void Watchdog::set_explain_grace(std::chrono::milliseconds grace) {
  std::lock_guard<std::mutex> lock(mutex_);
  explain_grace_ = grace;
}

int64_t Watchdog::expired_count() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return expired_;
}

void Watchdog::run() {
  std::unique_lock<std::mutex> lock(mutex_);
  // When the thread last ran: at first the construction (next_wake_'s first value), since on a
  // loaded machine, or in a process stopped right after it armed its first deadline, the
  // thread may first run long after it was started.
  auto last_ran = next_wake_;
  while (!stopping_) {
    auto now = std::chrono::steady_clock::now();
    // Note [A rank that was stalled itself]: running long after it meant to wake.
    if (now - next_wake_ >= kStalledAfter) {
      stalled_from_ = last_ran;   // the stall began after, at most kTick before it meant to wake
      stalled_until_ = now;
    }
    last_ran = now;
    auto earliest = now + kTick;
    Slot* expired = nullptr;
    for (Slot& slot : slots_) {
      if (!slot.active || slot.fired) continue;
      if (slot.deadline <= now) {
        expired = &slot;
        break;
      }
      earliest = std::min(earliest, slot.deadline);
    }
    if (expired != nullptr) {
      expired->fired = true;
      ++expired_;
      Slot copy = *expired;
      lock.unlock();
      fire(copy);
      lock.lock();
      next_wake_ = last_ran = std::chrono::steady_clock::now();   // the report's own time is no stall
      continue;
    }
    next_wake_ = earliest;
    wake_.wait_until(lock, earliest);
  }
}

namespace {

// The answer of one explain() call, shared with the helper thread that may outlive us.
struct Explanation {
  std::mutex mutex;
  std::condition_variable ready;
  bool done = false;
  std::string text;
};

}  // namespace

void Watchdog::fire(const Slot& slot) {
  std::chrono::milliseconds grace;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    grace = explain_grace_;
  }
  // Note [A rank that was stalled itself]: the part of this collective's wait, from arming
  // to the deadline, during which this process did not run.
  const auto armed = slot.deadline - slot.timeout;
  const auto stalled = std::max(std::chrono::steady_clock::duration::zero(),
                                std::min(stalled_until_, slot.deadline) - std::max(stalled_from_, armed));
  if (stalled_until_ >= slot.deadline && stalled * 2 >= slot.deadline - armed) {
    const double seconds = std::chrono::duration<double>(stalled_until_ - stalled_from_).count();
    char text[64];
    std::snprintf(text, sizeof text, "%.1f", seconds);
    std::string message = "watchdog: " + slot.info.describe() + " did not finish within " +
                          std::to_string(slot.timeout.count()) + " ms because this rank itself was not running for " +
                          text + " s while the deadline passed (stopped, by SIGSTOP or a debugger, or not "
                          "scheduled); the other ranks were waiting for it. Ending the job with exit status " +
                          std::to_string(kExitWatchdog);
    log::error("watchdog", message);
    abort_(message, kExitWatchdog);
    return;
  }
  std::string missing = "which ranks are missing is unknown";
  if (!slot.info.explainable) {
    missing += " for this backend (NCCL_DEBUG=INFO shows NCCL's view)";
  } else if (explain_) {
    // The helper may block forever inside MPI (a stopped peer); it is detached, and the
    // job ends right after this report anyway.
    auto answer = std::make_shared<Explanation>();
    std::thread([answer, explain = explain_, seq = slot.info.seq] {
      std::string text;
      try {
        text = explain(seq);
      } catch (const std::exception& e) {
        text = std::string("could not tell which ranks are missing: ") + e.what();
      }
      std::lock_guard<std::mutex> lock(answer->mutex);
      answer->text = std::move(text);
      answer->done = true;
      answer->ready.notify_all();
    }).detach();
    std::unique_lock<std::mutex> lock(answer->mutex);
    if (answer->ready.wait_for(lock, grace, [&] { return answer->done; })) {
      missing = answer->text;
    } else {
      missing = "could not read the arrival table within " + std::to_string(grace.count()) +
                " ms (the rank that hosts it, rank 0, is unresponsive: stopped or stalled?)";
    }
  }
  std::string message = "watchdog: " + slot.info.describe() + " did not finish within " +
                        std::to_string(slot.timeout.count()) + " ms; " + missing +
                        ". Ending the job with exit status " + std::to_string(kExitWatchdog) +
                        " (raise comm.timeout_s if this step is legitimately slow)";
  log::error("watchdog", message);
  abort_(message, kExitWatchdog);
}

}  // namespace loom
