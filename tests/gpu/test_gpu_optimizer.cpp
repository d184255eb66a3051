// AdamW, LAMB, clip_grad_norm and divide_in_place on a GPU against the CPU on the same
// inputs (label gpu; skips visibly without a GPU). The same ParamStore layout is finalized
// on the CPU and on cuda:0, given the same values and gradients, and stepped by the same
// optimizer; the GPU's values and state must equal the CPU's:
//  - AdamW, LAMB values and slots: |gpu − cpu| <= 1e-6 |cpu| + 1e-12 after 3 steps (the
//    kernels use the CPU's float operations in its order, Note [Same arithmetic as the
//    CPU] in core/optimizer_cuda.h, so they are expected bit-equal; the tolerance only
//    allows a differently rounded sqrt). One update moves a weight by ~lr = 1e-2, so a
//    wrong formula, bias correction or decay mask is far outside it: the test shows that a
//    CPU step with another decay mask differs from the GPU's by more than 1e-4.
//  - LAMB trust ratios and the gradient norm: relative 1e-12 (double sums in another order).
//  - divide_in_place: bit-equal (one correctly rounded division on both).
// Sizes are odd and straddle the 4096-element chunks, so chunk edges and padding are hit.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "core/buffer.h"
#include "core/device.h"
#include "core/optimizer.h"
#include "core/param_store.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

#define LOOM_REQUIRE_GPU()                                                                       \
  do {                                                                                           \
    if (!cuda_available())                                                                       \
      LOOM_SKIP_NO_GPU("no CUDA device visible (cuda_device_count() == 0, CUDA runtime " +       \
                       cuda_runtime_version() + ", driver " + cuda_driver_version() + ")");      \
  } while (0)

const Device kGpu = Device::cuda(0);

void declare(ParamStore& ps) {
  ps.declare("wte.weight", {5, 13});
  ps.declare("ln.bias", {7});
  ps.declare("h.0.weight", {4097});      // one element past a chunk
  ps.declare("h.0.bias", {3, 3});
  ps.declare("h.1.weight", {3, 2731});   // 8193: two chunks and one element
}
const std::vector<uint8_t> kDecay = {1, 0, 1, 0, 1};

std::vector<float> to_host(Tensor t) {
  std::vector<float> host(static_cast<size_t>(t.numel()));
  copy_bytes(host.data(), Device::cpu(), t.data(), t.device(), t.nbytes());
  return host;
}

void upload(Tensor dst, const std::vector<float>& src) {
  copy_bytes(dst.data(), dst.device(), src.data(), Device::cpu(), dst.nbytes());
}

// Values and per-step gradients, equal on both stores; padding stays zero.
std::vector<float> random_packed(const ParamStore& ps, uint32_t seed, float scale) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> normal(0.0f, scale);
  std::vector<float> v(static_cast<size_t>(ps.total_elements()), 0.0f);
  for (const ParamStore::Entry& e : ps.entries())
    for (int64_t i = 0; i < e.numel; ++i) v[static_cast<size_t>(e.offset + i)] = normal(gen);
  return v;
}

struct Pair {
  ParamStore cpu, gpu;
  Pair() {
    declare(cpu);
    declare(gpu);
    cpu.finalize();
    gpu.finalize(kGpu);
    const std::vector<float> w = random_packed(cpu, 7, 1.0f);
    upload(cpu.values(), w);
    upload(gpu.values(), w);
  }
  void set_grads(int step) {
    const std::vector<float> g = random_packed(cpu, 100 + uint32_t(step), 0.1f);
    upload(cpu.grads(), g);
    upload(gpu.grads(), g);
  }
};

// Max |gpu − cpu| over elements where it exceeds rel |cpu| + 1e-12 is reported; returns
// the count of such elements (0: equal within the tolerance).
int64_t mismatches(const std::vector<float>& gpu, const std::vector<float>& cpu, double rel,
                   const std::string& what) {
  int64_t bad = 0;
  for (size_t i = 0; i < cpu.size(); ++i) {
    const double d = std::fabs(double(gpu[i]) - double(cpu[i]));
    if (d <= rel * std::fabs(double(cpu[i])) + 1e-12) continue;
    if (bad++ < 5)
      ADD_FAILURE() << what << " index " << i << ": expected (cpu) " << cpu[i] << ", actual (gpu) "
                    << gpu[i] << ", |diff| " << d;
  }
  return bad;
}

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  double m = 0.0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(double(a[i]) - double(b[i])));
  return m;
}

template <typename Opt>
void expect_same_steps(const char* name) {
  Pair p;
  AdamWOptions o{0.9, 0.999, 1e-8, 0.1, kDecay};
  Opt cpu(p.cpu, o), gpu(p.gpu, o);
  for (int step = 0; step < 3; ++step) {
    p.set_grads(step);
    cpu.step(p.cpu, 1e-2);
    gpu.step(p.gpu, 1e-2);
  }
  const std::vector<float> w_cpu = to_host(p.cpu.values()), w_gpu = to_host(p.gpu.values());
  EXPECT_EQ(mismatches(w_gpu, w_cpu, 1e-6, std::string(name) + " values"), 0);
  for (int q = 0; q < p.cpu.size(); ++q)
    for (const char* slot : {"m", "v"})
      EXPECT_EQ(mismatches(to_host(gpu.slot_view(q, slot)), to_host(cpu.slot_view(q, slot)), 1e-6,
                           std::string(name) + " slot " + slot + " of " + p.cpu.entry(q).name),
                0);
  EXPECT_EQ(gpu.steps_taken(), 3);
  EXPECT_TRUE(gpu.slot_view(0, "m").device() == kGpu);

  // The tolerance tells a wrong update apart: the CPU step with every parameter decaying
  // (a wrong mask) is far from the GPU's.
  Pair wrong;
  AdamWOptions all_decay = o;
  all_decay.decay.clear();
  Opt cpu_wrong(wrong.cpu, all_decay);
  for (int step = 0; step < 3; ++step) {
    wrong.set_grads(step);
    cpu_wrong.step(wrong.cpu, 1e-2);
  }
  EXPECT_GT(max_abs_diff(to_host(wrong.cpu.values()), w_gpu), 1e-4) << name;
}

TEST(GpuOptimizer, AdamWEqualsCpu) {
  LOOM_REQUIRE_GPU();
  expect_same_steps<AdamW>("adamw");
}

TEST(GpuOptimizer, LambEqualsCpu) {
  LOOM_REQUIRE_GPU();
  expect_same_steps<Lamb>("lamb");
  // Trust ratios: the per-parameter norms, summed in double in another order.
  Pair p;
  AdamWOptions o{0.9, 0.999, 1e-8, 0.1, kDecay};
  Lamb cpu(p.cpu, o), gpu(p.gpu, o);
  p.set_grads(0);
  cpu.step(p.cpu, 1e-2);
  gpu.step(p.gpu, 1e-2);
  const std::vector<double> tc = cpu.trust_ratios(), tg = gpu.trust_ratios();
  ASSERT_EQ(tc.size(), tg.size());
  for (size_t q = 0; q < tc.size(); ++q) {
    EXPECT_NEAR(tg[q], tc[q], 1e-12 * tc[q]) << "trust ratio of " << p.cpu.entry(int(q)).name;
    if (kDecay[q] == 0) {
      EXPECT_EQ(tg[q], 1.0) << "a parameter that does not decay keeps trust 1";
    }
  }
  EXPECT_NE(tg[0], 1.0);
}

TEST(GpuOptimizer, GradNormAndClipEqualCpu) {
  LOOM_REQUIRE_GPU();
  Pair p;
  p.set_grads(0);
  const std::vector<float> before = to_host(p.gpu.grads());
  const double norm_cpu = clip_grad_norm(p.cpu, 0.0), norm_gpu = clip_grad_norm(p.gpu, 0.0);
  EXPECT_NEAR(norm_gpu, norm_cpu, 1e-12 * norm_cpu);
  EXPECT_GT(norm_cpu, 1.0);
  EXPECT_EQ(to_host(p.gpu.grads()), before) << "max_norm 0 must not change the gradients";
  // A limit above the norm changes nothing; below it, both scale alike.
  EXPECT_NEAR(clip_grad_norm(p.gpu, 2.0 * norm_cpu), norm_cpu, 1e-12 * norm_cpu);
  EXPECT_EQ(to_host(p.gpu.grads()), before) << "a limit above the norm must not clip";
  clip_grad_norm(p.cpu, 0.5 * norm_cpu);
  clip_grad_norm(p.gpu, 0.5 * norm_cpu);
  const std::vector<float> clipped = to_host(p.gpu.grads());
  EXPECT_EQ(mismatches(clipped, to_host(p.cpu.grads()), 1e-6, "clipped gradients"), 0);
  EXPECT_NEAR(clip_grad_norm(p.gpu, 0.0), 0.5 * norm_cpu, 1e-5 * norm_cpu) << "the clipped norm";
}

TEST(GpuOptimizer, DivideEqualsCpuBitForBit) {
  LOOM_REQUIRE_GPU();
  Pair p;
  p.set_grads(1);
  divide_in_place(p.cpu.grads(), 24.0);
  divide_in_place(p.gpu.grads(), 24.0);
  EXPECT_EQ(to_host(p.gpu.grads()), to_host(p.cpu.grads()));
}

TEST(GpuOptimizer, SgdAndAdaGradRefuseGpuParameters) {
  LOOM_REQUIRE_GPU();
  Pair p;
  Sgd sgd(p.gpu);
  try {
    sgd.step(p.gpu, 0.1);
    FAIL() << "SGD stepped GPU parameters";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no GPU implementation"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("cuda:0"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace loom
