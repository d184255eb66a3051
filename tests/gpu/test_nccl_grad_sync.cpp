// GradSync over the NCCL communicator, rank -> GPU selection and the NCCL deadline (label
// gpu), as a singleton and under mpirun -np 2. Skips visibly without a GPU per rank; the
// GPU selection's "no GPU" and "two ranks, one GPU" errors are checked wherever they occur.
//  - buckets reduce to exact sums (integer-valued gradients) and finish() divides on the
//    device, for any order of mark_ready(); the gradient norm after the sync is the norm
//    of the summed gradient on every rank;
//  - overlap, by a result: with the NCCL stream held, a kernel queued on the compute
//    stream after mark_ready() still runs (the bucket's allreduce does not block compute);
//  - ordering, by a result: an allreduce started while the kernel producing its input is
//    held does not finish until that kernel has run, and reduces what it wrote;
//  - the deadline: at 2 ranks on 2 GPUs, an allreduce that rank 1 never joins is aborted
//    (ncclCommAbort) on rank 0 with a TimeoutError naming the op, the step and the rank.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/buffer.h"
#include "core/optimizer.h"
#include "core/param_store.h"
#include "dist/grad_sync.h"
#include "dist/nccl_communicator.h"
#include "tests/gpu/gpu_ranks.h"
#include "tests/gpu/gpu_test_kernels.h"
#include "tests/support/test_support.h"

namespace loom::test {
namespace {

using namespace std::chrono_literals;

MpiCommunicator& world() {
  MpiCommunicator& w = MpiCommunicator::world();
  w.set_default_timeout(std::chrono::seconds(120));  // a hang fails fast, not after 600 s
  return w;
}

int64_t value_at(int rank, int64_t index) { return (index * 7 + rank * 13) % 41; }

// As tests/mpi/test_grad_sync.cpp: odd sizes, several buckets with small caps.
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
}

GradSyncOptions small_buckets() {
  GradSyncOptions o;
  o.first_bucket_cap_bytes = 192;
  o.bucket_cap_bytes = 256;
  return o;
}

// Integer-valued gradients of `rank` at `step` in the packed layout; padding zero.
std::vector<float> grads_of(const ParamStore& ps, int rank, int step) {
  std::vector<float> g(static_cast<size_t>(ps.total_elements()), 0.0f);
  for (const ParamStore::Entry& e : ps.entries())
    for (int64_t i = 0; i < e.numel; ++i)
      g[static_cast<size_t>(e.offset + i)] = float(value_at(rank + 5 * step, e.offset + i) - 20);
  return g;
}

std::vector<float> to_host(Tensor t) {
  std::vector<float> host(static_cast<size_t>(t.numel()));
  copy_bytes(host.data(), Device::cpu(), t.data(), t.device(), t.nbytes());
  return host;
}

void upload(Tensor dst, const std::vector<float>& src) {
  copy_bytes(dst.data(), dst.device(), src.data(), Device::cpu(), dst.nbytes());
}

void expect_equal(const std::vector<float>& got, const std::vector<float>& want, const std::string& what,
                  int rank) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_EQ(got[i], want[i]) << what << " index " << i << " rank " << rank << ": expected " << want[i]
                               << ", actual " << got[i];
}

TEST(GpuSelect, OneGpuPerRankOrAClearError) {
  MpiCommunicator& w = world();
  const LocalRank local = local_rank_of(w);
  EXPECT_GE(local.rank, 0);
  EXPECT_LT(local.rank, local.size);
  EXPECT_LE(local.size, w.size());
  const int gpus = cuda_device_count();
  if (gpus == 0) {   // every rank of this machine sees none
    try {
      gpu_for_this_rank(w);
      FAIL() << "a rank without a GPU was given one";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find("sees no GPU"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find("rank " + std::to_string(w.rank())), std::string::npos) << e.what();
    }
    return;
  }
  if (gpus < local.size) {   // e.g. -np 2 on a one-GPU machine: refused on every rank
    try {
      gpu_for_this_rank(w);
      FAIL() << local.size << " ranks on this node were placed on " << gpus << " GPU(s)";
    } catch (const CommError& e) {
      EXPECT_NE(std::string(e.what()).find("would drive the same GPU"), std::string::npos) << e.what();
      EXPECT_NE(std::string(e.what()).find(std::to_string(local.size) + " ranks on this node but " +
                                           std::to_string(gpus) + " GPU(s)"),
                std::string::npos)
          << e.what();
    }
    return;
  }
  const Device gpu = gpu_for_this_rank(w);
  EXPECT_TRUE(gpu.is_cuda());
  EXPECT_EQ(gpu.index, local.rank % gpus);
  // No two ranks of the node on one GPU (all ranks of this test run on one node).
  std::vector<int32_t> all(static_cast<size_t>(w.size()));
  int32_t mine = gpu.index;
  w.allgather(Tensor(&mine, {1}, DType::kI32), Tensor(all.data(), {w.size()}, DType::kI32));
  std::sort(all.begin(), all.end());
  EXPECT_EQ(std::adjacent_find(all.begin(), all.end()), all.end()) << "two ranks share a GPU";
}

TEST(NcclGradSync, BucketsSumExactlyAndScaleOnTheDevice) {
  MpiCommunicator& w = world();
  LOOM_REQUIRE_GPU_PER_RANK(w);
  const Device gpu = gpu_for_this_rank(w);
  Communicator& comm = comm_for(gpu);
  ASSERT_EQ(comm.backend(), "nccl");
  ParamStore ps;
  declare_params(ps);
  ps.finalize(gpu);
  GradSync sync(ps, comm, small_buckets());
  ASSERT_GE(sync.buckets().size(), 4u);
  for (int step = 0; step < 4; ++step) {
    comm.set_step(step);
    upload(ps.grads(), grads_of(ps, w.rank(), step));
    std::vector<float> expected(static_cast<size_t>(ps.total_elements()), 0.0f);
    for (int r = 0; r < w.size(); ++r) {
      const std::vector<float> g = grads_of(ps, r, step);
      for (size_t i = 0; i < g.size(); ++i) expected[i] += g[i];
    }
    const double divisor = step % 2 == 0 ? 1.0 : 3.0;   // not a power of 2: rounding shows
    if (divisor != 1.0)
      for (float& x : expected) x /= float(divisor);
    std::vector<int> order(static_cast<size_t>(ps.size()));
    std::iota(order.begin(), order.end(), 0);
    std::mt19937 gen(uint32_t(1000 + 17 * w.rank() + step));
    std::shuffle(order.begin(), order.end(), gen);   // a different order on every rank
    for (int p : order) sync.mark_ready(p);
    sync.finish(divisor);
    expect_equal(to_host(ps.grads()), expected, "gradients after step " + std::to_string(step), w.rank());

    // The global gradient norm, from the reduced gradients: the norm of the sum, on every rank.
    double sum = 0.0;
    for (float x : expected) sum += double(x) * double(x);
    const double norm = clip_grad_norm(ps, 0.0);
    EXPECT_NEAR(norm, std::sqrt(sum), 1e-12 * std::sqrt(sum)) << "step " << step << " rank " << w.rank();
    double lo = norm, hi = norm;
    w.allreduce(Tensor(&lo, {1}, DType::kF64), ReduceOp::kMin);
    w.allreduce(Tensor(&hi, {1}, DType::kF64), ReduceOp::kMax);
    EXPECT_EQ(lo, hi) << "ranks disagree on the gradient norm";
  }
  EXPECT_EQ(sync.stats().launched_early, 4 * sync.stats().buckets);
  comm.set_step(-1);
}

TEST(NcclGradSync, BucketAllreduceDoesNotHoldUpCompute) {
  MpiCommunicator& w = world();
  LOOM_REQUIRE_GPU_PER_RANK(w);
  const Device gpu = gpu_for_this_rank(w);
  auto& nccl = dynamic_cast<NcclCommunicator&>(comm_for(gpu));
  DeviceGuard on_device(gpu);
  ParamStore ps;
  declare_params(ps);
  ps.finalize(gpu);
  GradSync sync(ps, nccl, small_buckets());
  // Warm up: NCCL sets up connections and buffers on a first collective (cudaMalloc may
  // synchronise the device), which must not happen while a stream is held below.
  nccl.allreduce(ps.grads(), ReduceOp::kSum);
  upload(ps.grads(), grads_of(ps, w.rank(), 0));
  std::vector<float> expected(static_cast<size_t>(ps.total_elements()), 0.0f);
  for (int r = 0; r < w.size(); ++r) {
    const std::vector<float> g = grads_of(ps, r, 0);
    for (size_t i = 0; i < g.size(); ++i) expected[i] += g[i];
  }
  HostFlag release_nccl, compute_ran;
  // Hold the NCCL stream: bucket 0's allreduce, launched below, cannot finish before release.
  launch_hold_then_copy(nccl.stream(), release_nccl, 30000, nullptr, nullptr, 0);
  const GradBucket& first = sync.buckets()[0];
  for (int p = first.last_param; p >= first.first_param; --p) sync.mark_ready(p);
  // "The rest of backward": a kernel queued on the compute stream after the launch.
  launch_signal(cuda_current_stream(gpu.index), compute_ran);
  const auto give_up = std::chrono::steady_clock::now() + 20s;
  while (compute_ran.get() == 0 && std::chrono::steady_clock::now() < give_up) std::this_thread::sleep_for(1ms);
  const bool overlapped = compute_ran.get() == 1;
  release_nccl.set(1);
  sync.mark_all_ready();
  sync.finish(1.0);
  EXPECT_TRUE(overlapped) << "rank " << w.rank() << ": a compute-stream kernel queued after bucket 0's "
                          << "allreduce waited for it (the NCCL stream blocks compute: no overlap)";
  expect_equal(to_host(ps.grads()), expected, "gradients after the held step", w.rank());
  EXPECT_EQ(sync.stats().launched_early, 1) << "bucket 0 was launched by mark_ready()";
}

TEST(NcclGradSync, AllreduceWaitsForTheComputeThatProducesItsInput) {
  MpiCommunicator& w = world();
  LOOM_REQUIRE_GPU_PER_RANK(w);
  const Device gpu = gpu_for_this_rank(w);
  Communicator& comm = comm_for(gpu);
  DeviceGuard on_device(gpu);
  const int64_t n = 4099;
  std::vector<float> mine(static_cast<size_t>(n)), expected(static_cast<size_t>(n), 0.0f);
  for (int64_t i = 0; i < n; ++i) {
    mine[static_cast<size_t>(i)] = float(value_at(w.rank(), i) + 1);
    for (int r = 0; r < w.size(); ++r) expected[static_cast<size_t>(i)] += float(value_at(r, i) + 1);
  }
  Buffer source(static_cast<size_t>(n) * sizeof(float), gpu), buf(static_cast<size_t>(n) * sizeof(float), gpu);
  upload(source.as(DType::kF32), mine);   // buf stays zero until the held kernel copies
  comm.allreduce(buf.as(DType::kF32), ReduceOp::kSum);   // warm up (see above); zeros stay zeros
  HostFlag release;
  launch_hold_then_copy(cuda_current_stream(gpu.index), release, 30000, static_cast<float*>(buf.data()),
                        static_cast<const float*>(source.data()), n);
  std::unique_ptr<Work> work = comm.allreduce_async(buf.as(DType::kF32), CollectiveOptions{});
  std::this_thread::sleep_for(300ms);   // ample for an unordered allreduce of 16 KB to end
  const bool finished_early = work->done();
  release.set(1);
  work->wait();
  EXPECT_FALSE(finished_early) << "rank " << w.rank() << ": the allreduce finished while the kernel "
                               << "producing its input was held (not ordered after the compute stream)";
  expect_equal(to_host(buf.as(DType::kF32)), expected, "allreduce of the produced input", w.rank());
}

TEST(NcclWatchdog, AnAllreduceOneRankNeverJoinsIsAbortedNamingOpStepAndRank) {
  MpiCommunicator& w = world();
  if (w.size() != 2) GTEST_SKIP() << "a 2-rank test (runs under mpirun -np 2)";
  LOOM_REQUIRE_GPU_PER_RANK(w);
  const Device gpu = gpu_for_this_rank(w);
  std::string message;
  int exit_code = 0;
  double seconds = 0.0;
  bool aborted = false, refused_after = false;
  {
    NcclCommunicator nccl(w, gpu.index);   // its own communicator: this test kills it
    Buffer buf(64 * sizeof(float), gpu);
    nccl.allreduce(buf.as(DType::kF32), ReduceOp::kSum);   // connected and working
    nccl.set_step(7);
    if (w.rank() == 0) {
      const auto start = std::chrono::steady_clock::now();
      try {
        nccl.allreduce(buf.as(DType::kF32), CollectiveOptions{ReduceOp::kSum, 3000ms});
      } catch (const TimeoutError& e) {
        message = e.what();
        exit_code = e.exit_code();
      }
      seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      aborted = nccl.aborted();
      try {
        nccl.barrier();
      } catch (const CommError& e) {
        refused_after = std::string(e.what()).find("aborted after allreduce") != std::string::npos;
      }
    }
    w.barrier();   // rank 1 waits here (host MPI) while rank 0's allreduce times out
  }
  if (w.rank() != 0) return;
  ASSERT_FALSE(message.empty()) << "rank 0's lonely allreduce did not time out";
  EXPECT_EQ(exit_code, kExitWatchdog);
  for (const char* part : {"allreduce #3", "at step 7", "on rank 0/2", "did not finish within 3000 ms",
                           "ncclCommAbort"})
    EXPECT_NE(message.find(part), std::string::npos) << "'" << part << "' in: " << message;
  EXPECT_GE(seconds, 2.9);
  EXPECT_LT(seconds, 3.0 + 20.0) << "the abort took too long";
  EXPECT_TRUE(aborted);
  EXPECT_TRUE(refused_after) << "a dead communicator must refuse further collectives";
}

}  // namespace
}  // namespace loom::test
