// GradSync (dist/grad_sync.h) on the MPI world, as a singleton and under mpirun -np 2, 3:
//  - bucketed asynchronous allreduces give, bit for bit, what one blocking allreduce of
//    the whole gradient buffer gives (integer-valued gradients: sums are exact), for any
//    order of mark_ready() calls - even a different order on every rank;
//  - launches are observable, not timed: a recording Communicator shows the first bucket's
//    allreduce issued as soon as its parameters are marked, and launches in fixed bucket
//    order when parameters are marked out of order.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "core/param_store.h"
#include "dist/grad_sync.h"
#include "tests/mpi/collective_checks.h"

namespace loom::test {
namespace {

MpiCommunicator& world() {
  MpiCommunicator& w = MpiCommunicator::world();
  w.set_default_timeout(std::chrono::seconds(120));  // a hang fails fast, not after 600 s
  return w;
}

// Odd sizes, so that the 64-byte padding between parameters is never empty. With
// small_buckets(): bucket 0 = [ln.weight, head.weight], 1 = [h.1.bias .. h.2.bias],
// 2 = [h.0.weight .. h.1.weight], 3 = [embed.weight], 4 = [wpe.weight].
void declare_params(ParamStore& ps) {
  ps.declare("wpe.weight", {5, 10});
  ps.declare("embed.weight", {7, 3});
  ps.declare("h.0.weight", {5, 5});
  ps.declare("h.0.bias", {5});
  ps.declare("h.1.weight", {13});
  ps.declare("h.1.bias", {1});
  ps.declare("h.2.weight", {3, 7});
  ps.declare("h.2.bias", {3});
  ps.declare("ln.weight", {2, 3, 3});
  ps.declare("head.weight", {3, 5});
  ps.finalize();
}

// Small caps (in bytes): several buckets of one to three parameters.
GradSyncOptions small_buckets() {
  GradSyncOptions o;
  o.first_bucket_cap_bytes = 192;
  o.bucket_cap_bytes = 256;
  return o;
}

// Integer-valued gradients that differ per rank, step and parameter; padding stays zero.
void fill_grads(ParamStore& ps, int rank, int step) {
  ps.zero_grads();
  for (int p = 0; p < ps.size(); ++p) {
    float* g = ps.grad(p).f32();
    for (int64_t i = 0; i < ps.entry(p).numel; ++i)
      g[i] = float(value_at(rank + 5 * step, ps.entry(p).offset + i) - 20);
  }
}

std::vector<float> grads_copy(const ParamStore& ps) {
  const float* g = ps.grads().f32();
  return std::vector<float>(g, g + ps.total_elements());
}

// A rank-dependent order of all parameters.
std::vector<int> shuffled_order(int n, int rank, int step) {
  std::vector<int> order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  std::mt19937 gen(uint32_t(1000 + 17 * rank + step));
  std::shuffle(order.begin(), order.end(), gen);
  return order;
}

TEST(GradSync, BucketedAsyncEqualsBlockingAllreduceBitForBit) {
  MpiCommunicator& w = world();
  ParamStore ps;
  declare_params(ps);
  GradSync sync(ps, w, small_buckets());
  ASSERT_GE(sync.buckets().size(), 4u) << "the caps should give several buckets";
  for (int step = 0; step < 4; ++step) {
    fill_grads(ps, w.rank(), step);
    std::vector<float> expected = grads_copy(ps);
    w.allreduce(tensor_of(expected), ReduceOp::kSum);
    const double divisor = step % 2 == 0 ? 1.0 : 3.0;   // a divisor that is not a power of 2
    if (divisor != 1.0)
      for (float& x : expected) x /= float(divisor);
    if (step == 3) {
      sync.mark_all_ready();
    } else {
      for (int p : shuffled_order(ps.size(), w.rank(), step)) sync.mark_ready(p);
    }
    sync.finish(divisor);
    expect_equal(grads_copy(ps), expected, "gradients after step " + std::to_string(step));
  }
  const GradSyncStats& s = sync.stats();
  EXPECT_EQ(s.steps, 4);
  EXPECT_EQ(s.buckets, int(sync.buckets().size()));
  EXPECT_EQ(s.launched_early, 4 * s.buckets) << "every parameter was marked before finish()";
  EXPECT_GE(s.wait_s, 0.0);
  EXPECT_GE(s.window_s, 0.0);
}

// A Communicator that forwards everything to the real one and records each async
// allreduce as (offset in the gradient buffer, element count).
class RecordingCommunicator final : public Communicator {
 public:
  struct Launch {
    int64_t offset;
    int64_t count;
    bool operator==(const Launch&) const = default;
  };
  RecordingCommunicator(Communicator& inner, const float* base) : inner_(inner), base_(base) {}

  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  std::string_view backend() const override { return inner_.backend(); }
  MpiCommHandle mpi_comm() const override { return inner_.mpi_comm(); }
  void allreduce(Tensor buf, const CollectiveOptions& opt) override { inner_.allreduce(buf, opt); }
  std::unique_ptr<Work> allreduce_async(Tensor buf, const CollectiveOptions& opt) override {
    launches.push_back({static_cast<const float*>(buf.data()) - base_, buf.numel()});
    return inner_.allreduce_async(buf, opt);
  }
  void broadcast(Tensor buf, int root) override { inner_.broadcast(buf, root); }
  void allgatherv(Tensor mine, Tensor all, std::span<const int64_t> counts) override {
    inner_.allgatherv(mine, all, counts);
  }
  void alltoallv(Tensor send, std::span<const int64_t> send_counts, Tensor recv,
                 std::span<const int64_t> recv_counts) override {
    inner_.alltoallv(send, send_counts, recv, recv_counts);
  }
  void barrier() override { inner_.barrier(); }
  [[noreturn]] void abort(std::string_view why, int exit_code) override {
    inner_.abort(why, exit_code);
    std::abort();   // not reached
  }

  std::vector<Launch> launches;

 private:
  Communicator& inner_;
  const float* base_;
};

using Launch = RecordingCommunicator::Launch;

Launch launch_of(const GradBucket& b) { return {b.offset, b.count}; }

void mark_bucket(GradSync& sync, const GradBucket& b) {
  for (int p = b.first_param; p <= b.last_param; ++p) sync.mark_ready(p);
}

TEST(GradSync, FirstBucketLaunchesAsSoonAsItsParametersAreMarked) {
  ParamStore ps;
  declare_params(ps);
  RecordingCommunicator rec(world(), ps.grads().f32());
  GradSync sync(ps, rec, small_buckets());
  const std::vector<GradBucket>& buckets = sync.buckets();
  ASSERT_GE(buckets.size(), 4u);
  fill_grads(ps, rec.rank(), 0);
  const GradBucket& first = buckets[0];
  EXPECT_EQ(first.last_param, ps.size() - 1) << "bucket 0 holds the last parameter";
  for (int p = first.last_param; p > first.first_param; --p) {
    sync.mark_ready(p);
    EXPECT_TRUE(rec.launches.empty()) << "launched before parameter " << first.first_param << " was marked";
  }
  sync.mark_ready(first.first_param);
  ASSERT_EQ(rec.launches.size(), 1u) << "bucket 0 complete: its allreduce must have been issued";
  EXPECT_EQ(rec.launches[0], launch_of(first));
  sync.mark_all_ready();
  sync.finish();
}

TEST(GradSync, LaunchesInFixedBucketOrderWhenMarkedOutOfOrder) {
  ParamStore ps;
  declare_params(ps);
  RecordingCommunicator rec(world(), ps.grads().f32());
  GradSync sync(ps, rec, small_buckets());
  const std::vector<GradBucket>& buckets = sync.buckets();
  ASSERT_GE(buckets.size(), 5u);
  for (int step = 0; step < 2; ++step) {   // the second step checks the reset
    rec.launches.clear();
    fill_grads(ps, rec.rank(), step);
    std::vector<float> expected = grads_copy(ps);
    world().allreduce(tensor_of(expected), ReduceOp::kSum);
    // Bucket 2 completes first, then bucket 0 (first parameter first), then bucket 1.
    mark_bucket(sync, buckets[2]);
    EXPECT_TRUE(rec.launches.empty()) << "bucket 2 must wait for buckets 0 and 1";
    for (int p = buckets[0].first_param; p <= buckets[0].last_param; ++p) sync.mark_ready(p);
    ASSERT_EQ(rec.launches.size(), 1u);
    EXPECT_EQ(rec.launches[0], launch_of(buckets[0]));
    mark_bucket(sync, buckets[1]);
    ASSERT_EQ(rec.launches.size(), 3u) << "bucket 1 complete: buckets 1 and 2 launch, in order";
    EXPECT_EQ(rec.launches[1], launch_of(buckets[1]));
    EXPECT_EQ(rec.launches[2], launch_of(buckets[2]));
    // The rest: the last bucket complete, the others left for finish().
    mark_bucket(sync, buckets.back());
    EXPECT_EQ(rec.launches.size(), 3u) << "the last bucket waits for the ones before it";
    for (size_t b = 3; b + 1 < buckets.size(); ++b) mark_bucket(sync, buckets[b]);
    sync.finish();
    ASSERT_EQ(rec.launches.size(), buckets.size());
    for (size_t b = 0; b < buckets.size(); ++b)
      EXPECT_EQ(rec.launches[b], launch_of(buckets[b])) << "launch " << b << " on rank " << rec.rank();
    expect_equal(grads_copy(ps), expected, "gradients after out-of-order marking");
  }
}

}  // namespace
}  // namespace loom::test
