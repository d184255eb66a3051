#include "dist/grad_sync.h"

#include <algorithm>
#include <string>

#include "core/error.h"
#include "core/optimizer.h"
#include "core/param_store.h"
#include "dist/communicator.h"

namespace loom {
namespace {

// Bytes of the range from parameter `lo`'s offset to the end of parameter `hi`.
int64_t range_bytes(const ParamStore& params, int lo, int hi) {
  const ParamStore::Entry& a = params.entry(lo);
  const ParamStore::Entry& b = params.entry(hi);
  return (b.offset + b.numel - a.offset) * int64_t(sizeof(float));
}

GradBucket make_bucket(const ParamStore& params, int lo, int hi) {
  GradBucket b;
  b.first_param = lo;
  b.last_param = hi;
  b.offset = params.entry(lo).offset;
  b.count = range_bytes(params, lo, hi) / int64_t(sizeof(float));
  return b;
}

double seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

}  // namespace

std::vector<GradBucket> assign_buckets(const ParamStore& params, const GradSyncOptions& options) {
  LOOM_CHECK(options.bucket_cap_bytes > 0 && options.first_bucket_cap_bytes > 0, Error,
             "GradSync: bucket caps must be positive (got " +
                 std::to_string(options.first_bucket_cap_bytes) + " and " +
                 std::to_string(options.bucket_cap_bytes) + " bytes)");
  std::vector<GradBucket> buckets;
  int hi = params.size() - 1;
  while (hi >= 0) {   // grow [lo, hi] downwards while the range fits the cap
    const int64_t cap = buckets.empty() ? options.first_bucket_cap_bytes : options.bucket_cap_bytes;
    int lo = hi;
    while (lo > 0 && range_bytes(params, lo - 1, hi) <= cap) --lo;
    buckets.push_back(make_bucket(params, lo, hi));
    hi = lo - 1;
  }
  return buckets;
}

GradSync::GradSync(const ParamStore& params, Communicator& comm, const GradSyncOptions& options)
    : params_(params), comm_(comm), buckets_(assign_buckets(params, options)) {
  LOOM_ASSERT(params.finalized(), "GradSync needs a finalized ParamStore");
  const size_t P = size_t(params.size()), B = buckets_.size();
  bucket_of_.assign(P, -1);
  for (size_t b = 0; b < B; ++b)
    for (int p = buckets_[b].first_param; p <= buckets_[b].last_param; ++p) bucket_of_[size_t(p)] = int(b);
  marked_.assign(P, 0);
  unmarked_.resize(B);
  work_.resize(B);
  launched_at_.resize(B);
  done_.assign(B, 0);
  stats_.buckets = int(B);
  for (const GradBucket& b : buckets_) stats_.bytes_per_step += b.bytes();
  for (size_t b = 0; b < B; ++b) unmarked_[b] = buckets_[b].last_param - buckets_[b].first_param + 1;
}

GradSync::~GradSync() {
  // A step abandoned by an exception: let each running allreduce finish before the
  // buffer can go away (a Work's destructor waits, too; this keeps the order).
  for (std::unique_ptr<Work>& w : work_) {
    if (w == nullptr) continue;
    try {
      w->wait();
    } catch (const Error&) {
      // The collective failed; the error was reported where it was first seen.
    }
  }
}

int GradSync::bucket_of(int param_index) const {
  LOOM_ASSERT(param_index >= 0 && param_index < params_.size(), "parameter index out of range");
  return bucket_of_[size_t(param_index)];
}

void GradSync::mark_ready(int param_index) {
  const int b = bucket_of(param_index);
  LOOM_ASSERT(marked_[size_t(param_index)] == 0,
              "GradSync: parameter '" + params_.entry(param_index).name +
                  "' marked ready twice in one step");
  marked_[size_t(param_index)] = 1;
  --unmarked_[size_t(b)];
  poll_launched();
  launch_ready_buckets();
}

void GradSync::mark_all_ready() {
  for (int p = params_.size() - 1; p >= 0; --p)
    if (marked_[size_t(p)] == 0) mark_ready(p);
}

void GradSync::launch_ready_buckets() {
  const int B = int(buckets_.size());
  while (next_launch_ < B && unmarked_[size_t(next_launch_)] == 0) {
    const GradBucket& bucket = buckets_[size_t(next_launch_)];
    CollectiveOptions opt;
    opt.op = ReduceOp::kSum;
    launched_at_[size_t(next_launch_)] = Clock::now();
    work_[size_t(next_launch_)] = comm_.allreduce_async(params_.grads().slice(bucket.offset, bucket.count), opt);
    ++next_launch_;
  }
}

void GradSync::poll_launched() {
  for (int b = 0; b < next_launch_; ++b)
    if (done_[size_t(b)] == 0 && work_[size_t(b)]->done()) done_[size_t(b)] = 1;
}

void GradSync::finish(double divisor) {
  const Clock::time_point start = Clock::now();
  LOOM_CHECK(divisor > 0.0, Error, "GradSync::finish: divisor must be positive (got " +
                                       std::to_string(divisor) + ")");
  poll_launched();
  const int early = next_launch_;
  for (int b = 0; b < early; ++b) {
    stats_.window_s += seconds(start - launched_at_[size_t(b)]);
    stats_.done_early += done_[size_t(b)];
  }
  stats_.launched_early += early;
  for (int p = params_.size() - 1; p >= 0; --p)
    LOOM_ASSERT(marked_[size_t(p)] != 0,
                "GradSync::finish: parameter '" + params_.entry(p).name +
                    "' was never marked ready this step (call mark_ready() when its gradient "
                    "is complete, or mark_all_ready())");
  launch_ready_buckets();
  LOOM_ASSERT(next_launch_ == int(buckets_.size()), "GradSync: a complete bucket was not launched");

  for (size_t b = 0; b < buckets_.size(); ++b) {
    const Clock::time_point w0 = Clock::now();
    work_[b]->wait();
    stats_.wait_s += seconds(Clock::now() - w0);
    work_[b].reset();
    // The correctly rounded sum / divisor, element by element, where the gradients live (on
    // a GPU: queued on the compute stream after the bucket's allreduce, which wait() saw end).
    if (divisor != 1.0) divide_in_place(params_.grads().slice(buckets_[b].offset, buckets_[b].count), divisor);
  }
  // Reset for the next step.
  std::fill(marked_.begin(), marked_.end(), uint8_t(0));
  std::fill(done_.begin(), done_.end(), uint8_t(0));
  for (size_t b = 0; b < buckets_.size(); ++b)
    unmarked_[b] = buckets_[b].last_param - buckets_[b].first_param + 1;
  next_launch_ = 0;
  ++stats_.steps;
  stats_.finish_s += seconds(Clock::now() - start);
}

void GradSync::reset_stats() {
  const int buckets = stats_.buckets;
  const int64_t bytes = stats_.bytes_per_step;
  stats_ = GradSyncStats{};
  stats_.buckets = buckets;
  stats_.bytes_per_step = bytes;
}

GradSyncReport grad_sync_report(const GradSyncStats& s, double blocking_allreduce_s) {
  GradSyncReport rep;
  rep.buckets = s.buckets;
  rep.bytes_per_step = s.bytes_per_step;
  rep.blocking_allreduce_s = std::max(0.0, blocking_allreduce_s);
  rep.exposed_s = s.steps > 0 ? s.wait_s / double(s.steps) : 0.0;
  rep.buckets_done_early =
      s.steps > 0 && s.buckets > 0 ? double(s.done_early) / double(s.steps * s.buckets) : 0.0;
  rep.hidden_fraction = rep.blocking_allreduce_s > 0.0
                            ? std::clamp(1.0 - rep.exposed_s / rep.blocking_allreduce_s, 0.0, 1.0)
                            : 0.0;
  return rep;
}

}  // namespace loom
