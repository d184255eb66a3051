#pragma once
// GradSync: data-parallel gradient synchronisation over a finalized ParamStore's gradient
// buffer (DESIGN.md "Gradient synchronisation"). Buckets are fixed at construction;
// backward calls mark_ready(p) as each parameter's gradient is complete, a bucket's
// allreduce starts as soon as the bucket is complete (in fixed bucket order), and
// finish() waits for all of them and scales, before the optimizer step.
//
// Note [Bucket order]
// Backward produces the last layers' gradients first, so buckets take parameters in
// REVERSE declaration order: bucket 0 holds the last parameters. Each bucket is a run of
// consecutive parameters and so one contiguous range of the gradient buffer (from its
// lowest parameter's offset to the end of its highest parameter; the 64-byte padding
// between them rides along as zeros). Bucket 0 is capped at first_bucket_cap_bytes (small,
// so communication starts early), the others at bucket_cap_bytes; a parameter larger than
// the cap gets a bucket of its own.
// Buckets are LAUNCHED strictly in bucket order: when bucket 2 completes before bucket 1,
// it is launched right after bucket 1. So every rank issues the same allreduces in the
// same order (STYLE.md rule 10) whatever order its backward marks parameters in, and the
// result is independent of timing: each element is reduced by one collective.
//
// Note [What GradSync measures]
// For each step (one finish()), on this rank, with a steady clock:
//   launched_early  buckets launched by mark_ready(), before finish() began;
//   done_early      of those, buckets whose allreduce had already completed when finish()
//                   began (seen by Work::done(): entirely hidden behind backward);
//   window_s        Σ over early buckets of (start of finish() − the bucket's launch):
//                   the time its allreduce had to run behind backward (an upper bound
//                   on the communication time hidden);
//   wait_s          time blocked in Work::wait() inside finish(): communication NOT
//                   hidden (exposed), what overlap failed to cover;
//   finish_s        all of finish(): late launches, waits and scaling.
// Stats accumulate over steps until reset_stats(). MPI progresses non-blocking
// collectives only inside MPI calls, so mark_ready() polls the launched buckets
// (Work::done(), one MPI_Testall each): that is what lets MPI's allreduces advance during
// backward on the CPU. NCCL runs on its own stream regardless.
//
// Allocation: everything is sized at construction; a step allocates nothing in GradSync.
// The one exception is the Communicator interface's Work handle (a small heap object per
// bucket launch, inside allreduce_async).
//
// Threading: one thread per GradSync (the one running backward and the step).
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace loom {

class Communicator;
class ParamStore;
class Work;

struct GradSyncOptions {
  int64_t bucket_cap_bytes = int64_t(25) << 20;        // 25 MiB
  int64_t first_bucket_cap_bytes = int64_t(1) << 20;   // 1 MiB: bucket 0 (the last layers)
};

// One bucket: parameters [first_param, last_param] (declaration order) and the range
// [offset, offset + count) of the gradient buffer, in elements.
struct GradBucket {
  int first_param = 0;
  int last_param = 0;
  int64_t offset = 0;
  int64_t count = 0;
  int64_t bytes() const { return count * int64_t(sizeof(float)); }
};

// The buckets GradSync uses for `params` (Note [Bucket order]): bucket 0 first.
std::vector<GradBucket> assign_buckets(const ParamStore& params, const GradSyncOptions& options);

struct GradSyncStats {
  int buckets = 0;               // fixed at construction
  int64_t bytes_per_step = 0;    // bytes allreduced per step, all buckets
  int64_t steps = 0;             // finish() calls counted
  int64_t launched_early = 0;    // Note [What GradSync measures], summed over steps
  int64_t done_early = 0;
  double window_s = 0.0;
  double wait_s = 0.0;
  double finish_s = 0.0;
};

// What a transformer reports of its gradient synchronisation (eval.json's "allreduce"),
// from GradSync's stats and one blocking allreduce of every bucket measured at start.
struct GradSyncReport {
  double blocking_allreduce_s = 0.0;   // one blocking allreduce of all buckets
  double exposed_s = 0.0;              // mean per step: waiting in GradSync::finish
  double hidden_fraction = 0.0;        // 1 − exposed / blocking, in [0, 1]; the wait also
                                       // holds any time spent waiting for a slower rank
  double buckets_done_early = 0.0;     // fraction of bucket allreduces already complete when
                                       // backward ended (entirely hidden)
  int buckets = 0;
  int64_t bytes_per_step = 0;
};
GradSyncReport grad_sync_report(const GradSyncStats& stats, double blocking_allreduce_s);

class GradSync {
 public:
  // `params` must be finalized and outlive this object; `comm` is the communicator for
  // the gradients' device (StepContext::device_comm, i.e. comm_for(params.device())).
  GradSync(const ParamStore& params, Communicator& comm, const GradSyncOptions& options = {});
  ~GradSync();   // waits for any allreduce still running (MPI writes into the buffer)
  GradSync(const GradSync&) = delete;
  GradSync& operator=(const GradSync&) = delete;

  // Parameter `param_index`'s gradient is complete for this step: launches every bucket
  // that is now complete and next in bucket order. Once per parameter per step.
  void mark_ready(int param_index);
  // For models that compute every gradient at once: marks all unmarked parameters.
  void mark_all_ready();
  // Launches what is left (every parameter must have been marked: a LOOM_ASSERT naming
  // the first one missing), waits for every bucket, divides each gradient by `divisor`
  // (1: keep the sum; e.g. the global batch size) and resets for the next step. On a GPU
  // the division is a device kernel (divide_in_place, core/optimizer.h) queued on the
  // compute stream. Gradients are not zeroed: the step's owner does.
  void finish(double divisor = 1.0);

  const std::vector<GradBucket>& buckets() const { return buckets_; }
  // Bucket index of each parameter (declaration order).
  int bucket_of(int param_index) const;
  const GradSyncStats& stats() const { return stats_; }
  void reset_stats();

 private:
  using Clock = std::chrono::steady_clock;
  void launch_ready_buckets();
  void poll_launched();

  const ParamStore& params_;
  Communicator& comm_;
  std::vector<GradBucket> buckets_;
  std::vector<int> bucket_of_;          // (P) bucket of each parameter
  std::vector<uint8_t> marked_;         // (P) marked this step
  std::vector<int> unmarked_;           // (buckets) parameters not yet marked
  std::vector<std::unique_ptr<Work>> work_;        // (buckets) launched this step
  std::vector<Clock::time_point> launched_at_;     // (buckets)
  std::vector<uint8_t> done_;           // (buckets) seen complete by a poll
  int next_launch_ = 0;                 // buckets [0, next_launch_) are launched
  GradSyncStats stats_;
};

}  // namespace loom
