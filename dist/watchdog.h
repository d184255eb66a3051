#pragma once
// Watchdog: one thread per process that turns a collective which misses its deadline into
// a clear report and the end of the whole job (exit status kExitWatchdog = 3).
//
// Note [Watchdog design]
// The communicator arms a deadline around every blocking collective and Work::wait
// (arm() returns a Guard that disarms on destruction). Arming is a mutex-protected slot
// write; the thread is woken only when a new deadline is earlier than the moment it
// already plans to wake up (it ticks every kTick anyway), so a collective with the
// default 600 s deadline costs two uncontended mutex round trips and no syscall.
// On expiry the thread asks `explain(seq)` which ranks did not arrive (MpiCommunicator
// reads its arrival table, see dist/arrival_table.h) on a helper thread, bounded by
// explain_grace(): a peer that gives no cooperation at all (SIGSTOPped, sleeping, or the
// table's host rank itself stopped) cannot make the watchdog hang. Then it logs one line
// naming the operation, its sequence number, the step, this rank and the missing ranks,
// and calls `abort(message, kExitWatchdog)`, which ends the job (MPI_Abort). If that does
// not end the process within kAbortGrace, the process _exits with the same status.
//
// Thread-safety: arm(), Guard destruction, set_default_timeout() may be called from any
// thread. explain and abort run on the watchdog's threads.
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/tensor.h"

namespace loom {

// What a collective is, for watchdog reports and error messages.
struct OpInfo {
  const char* op = "";           // "allreduce", "broadcast", ... (a string literal)
  const char* reduce = nullptr;  // "sum", "avg", ... for reductions, else nullptr
  int64_t numel = 0;             // elements this rank contributes or receives
  DType dtype = DType::kU8;
  int64_t seq = 0;               // collective sequence number on this communicator (from 1)
  int64_t step = -1;             // Communicator::step(); -1 outside the step loop
  int rank = 0;
  int size = 1;
  bool explainable = true;       // the arrival table tracks `seq` (MPI collectives only)

  // "allreduce #41 (sum, 1001 x f32) at step 17 on rank 2/3"
  std::string describe() const;
};

class Watchdog {
 public:
  // Returns one line naming the ranks that have not entered collective `seq`. May block:
  // the watchdog bounds it by explain_grace().
  using ExplainFn = std::function<std::string(int64_t seq)>;
  // Ends the job with `exit_code` after reporting `message`. In production it does not
  // return; unit tests pass one that records the call.
  using AbortFn = std::function<void(const std::string& message, int exit_code)>;

  static constexpr std::chrono::milliseconds kTick{250};
  // Note [A rank that was stalled itself]
  // A rank stopped (SIGSTOP, a debugger) or not scheduled misses its deadlines too, and on
  // waking its report used to blame the healthy ranks ("rank 0 has not entered", or "rank 0
  // is unresponsive") that were waiting for it. The watchdog thread knows when it meant to
  // wake (at most kTick ahead, or the next deadline); waking kStalledAfter or more past that
  // means this process did not run meanwhile (from when the thread last ran, at most kTick
  // early). When such a stall covers at least half of an expired collective's wait, the
  // report says that this rank itself was not running, for how long, and asks nothing of
  // the other ranks.
  static constexpr std::chrono::milliseconds kStalledAfter{1000};
  static constexpr std::chrono::milliseconds kAbortGrace{10000};

  Watchdog(ExplainFn explain, AbortFn abort);
  ~Watchdog();  // stop()
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Disarms its deadline when destroyed. Move-only.
  class Guard {
   public:
    Guard() = default;
    Guard(Guard&& other) noexcept : owner_(other.owner_), slot_(other.slot_) { other.owner_ = nullptr; }
    Guard& operator=(Guard&& other) noexcept;
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    ~Guard() { release(); }
    void release();

   private:
    friend class Watchdog;
    Guard(Watchdog* owner, size_t slot) : owner_(owner), slot_(slot) {}
    Watchdog* owner_ = nullptr;
    size_t slot_ = 0;
  };

  // Arms a deadline of `timeout` (zero: default_timeout()) for the collective `info`.
  [[nodiscard]] Guard arm(const OpInfo& info, std::chrono::milliseconds timeout);

  void set_default_timeout(std::chrono::milliseconds timeout);
  std::chrono::milliseconds default_timeout() const;
  // How long the report waits for explain() (default 3 s).
  void set_explain_grace(std::chrono::milliseconds grace);
  // Deadlines that expired so far (tests).
  int64_t expired_count() const;
  // Stops and joins the thread; idempotent. Armed deadlines no longer fire.
  void stop();

 private:
  struct Slot {
    bool active = false;
    bool fired = false;
    OpInfo info;
    std::chrono::milliseconds timeout{0};
    std::chrono::steady_clock::time_point deadline;
  };
  void run();
  void fire(const Slot& slot);
  void disarm(size_t slot);

  ExplainFn explain_;
  AbortFn abort_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::vector<Slot> slots_;                               // guarded by mutex_
  std::chrono::steady_clock::time_point next_wake_;       // guarded by mutex_
  std::chrono::milliseconds default_timeout_{600000};     // guarded by mutex_
  std::chrono::milliseconds explain_grace_{3000};         // guarded by mutex_
  int64_t expired_ = 0;                                   // guarded by mutex_
  bool stopping_ = false;                                 // guarded by mutex_
  // The last stall of this process seen by the thread (Note [A rank that was stalled
  // itself]); equal when none. Watchdog thread only.
  std::chrono::steady_clock::time_point stalled_from_, stalled_until_;
  std::thread thread_;
};

}  // namespace loom
