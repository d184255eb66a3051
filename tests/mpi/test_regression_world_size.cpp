// The regression model (tests/support/regression_model.h) trained data-parallel on the MPI
// world (singleton, np 2, np 3) against the same model trained as a single process in this
// process (SoloCommunicator) on the same global batches; and its step allocating nothing.
//
// Note [Why not bit for bit across world sizes]
// At world size 1 the two runs are the same arithmetic and must agree bit for bit. At
// world sizes 2 and 3 each rank sums dweight over its own slice of the batch (one GEMM
// over its rows) and the allreduce adds those partial sums: float addition is not
// associative, so Σ over 61 examples and (Σ over 30) + (Σ over 31) differ in the last
// bits. Making them equal would need exact sums (fixed-point or per-example gradients
// reduced in global order: a B-times larger allreduce), which this model - a stand-in for
// the transformers - should not pay. The gradient then differs by a few float32 ulps of
// Σ|terms| (~1e-7 relative); AdamW's step is lr · m̂ / (√v̂ + ε), a ratio that passes such
// relative differences on without amplifying them (unless a gradient element sits within
// rounding of zero, where the ratio may flip sign - a property of the data, not of timing:
// this test is deterministic), so after S steps the parameters differ by about
// S · lr · 1e-6 at most: 3e-7 for 30 steps at lr 0.01 (measured: 6e-8 at 2 ranks, 3e-8 at
// 3). The test allows 1e-6 and reports every element beyond it. A slicing or bucketing bug
// (an example counted twice or missed, a divisor that depends on the world size) moves
// parameters by ~1e-3 or more.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <new>
#include <string>
#include <vector>

#include "core/param_store.h"
#include "dist/grad_sync.h"
#include "dist/mpi_communicator.h"
#include "tests/support/regression_model.h"
#include "tests/support/solo_communicator.h"

namespace {
// Global operator new counts its calls while counting is on (this binary only).
std::atomic<bool> g_counting{false};
std::atomic<int64_t> g_news{0};
}  // namespace

void* operator new(std::size_t bytes) {
  if (g_counting.load(std::memory_order_relaxed)) g_news.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(bytes == 0 ? 1 : bytes)) return p;
  throw std::bad_alloc();
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }

namespace loom::test {
namespace {

MpiCommunicator& world() {
  MpiCommunicator& w = MpiCommunicator::world();
  w.set_default_timeout(std::chrono::seconds(120));
  return w;
}

RegressionOptions options() {
  RegressionOptions o;
  o.dim = 97;         // odd sizes: uneven slices at 2 and 3 ranks (30 + 31, 20 + 20 + 21)
  o.batch = 61;
  o.steps = 30;
  o.seed = 5;
  o.dropout = false;  // per-rank dropout streams depend on the world size by design
  return o;
}

std::vector<float> values_of(RegressionModel& m) {
  const float* v = m.params().values().f32();
  return std::vector<float>(v, v + m.params().total_elements());
}

TEST(RegressionWorldSize, SameParametersAsASingleProcess) {
  MpiCommunicator& w = world();
  SoloCommunicator solo;
  RegressionModel parallel(options(), w);
  RegressionModel single(options(), solo);
  double loss_parallel = 0, loss_single = 0, first_single = 0, last_single = 0;
  for (int64_t step = 0; step < options().steps; ++step) {
    w.set_step(step);
    loss_parallel += parallel.train_step(StepContext{step, &w, Device::cpu(), &w}).loss_sum;
    // No device communicator: the model falls back to its own.
    last_single = single.train_step(StepContext{step, &solo, Device::cpu(), nullptr}).loss_sum;
    if (step == 0) first_single = last_single;
    loss_single += last_single;
  }
  w.set_step(-1);
  w.allreduce(Tensor::of(&loss_parallel, 1), ReduceOp::kSum);
  const std::vector<float> a = values_of(parallel), e = values_of(single);
  const double tol = w.size() == 1 ? 0.0 : 1e-6;   // Note [Why not bit for bit across world sizes]
  double max_diff = 0;
  int reported = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(double(a[i]) - double(e[i]));
    max_diff = std::max(max_diff, d);
    if (d > tol && reported++ < 5)
      ADD_FAILURE() << "parameter element " << i << ", rank " << w.rank() << ": expected "
                    << e[i] << ", actual " << a[i] << " (difference " << d << ")";
  }
  EXPECT_LE(max_diff, tol) << "world size " << w.size();
  EXPECT_NEAR(loss_parallel, loss_single, 1e-5 * loss_single);
  if (w.rank() == 0)
    std::printf("[ world size %d: max |parameter difference| %.3g after %lld steps; loss %.6g vs %.6g ]\n",
                w.size(), max_diff, static_cast<long long>(options().steps), loss_parallel, loss_single);
  EXPECT_LT(last_single, 0.8 * first_single) << "the single process did not train";
}

TEST(RegressionWorldSize, ParallelRunsAgreeAcrossRanks) {
  MpiCommunicator& w = world();
  RegressionModel model(options(), w);
  for (int64_t step = 0; step < 5; ++step) model.train_step(StepContext{step, &w, Device::cpu(), &w});
  std::vector<float> mine = values_of(model), root = mine;
  w.broadcast(Tensor::of(root.data(), int64_t(root.size())), 0);
  for (size_t i = 0; i < mine.size(); ++i)
    ASSERT_EQ(mine[i], root[i]) << "element " << i << " on rank " << w.rank() << " differs from rank 0";
}

// After the first step (which builds the GradSync), a step allocates nothing but the
// communicator's Work handle per bucket.
TEST(RegressionModelStep, AllocatesOnlyTheWorkHandles) {
  SoloCommunicator solo;
  RegressionOptions o = options();
  o.dropout = true;
  RegressionModel model(o, solo);
  model.train_step(StepContext{0, &solo, Device::cpu(), &solo});
  const int buckets = GradSync(model.params(), solo).stats().buckets;
  g_news = 0;
  g_counting = true;
  for (int64_t step = 1; step <= 4; ++step) model.train_step(StepContext{step, &solo, Device::cpu(), &solo});
  g_counting = false;
  EXPECT_EQ(g_news.load(), 4 * buckets) << "operator new calls in 4 steps (" << buckets << " bucket(s))";
}

}  // namespace
}  // namespace loom::test
