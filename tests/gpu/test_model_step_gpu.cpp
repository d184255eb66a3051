// One whole GPT step and one whole BERT step on a GPU against the same step on the CPU
// (label gpu; skips visibly without a GPU). The same options, init seed and batch go
// through Gpt/Bert::train_step on each side - two uneven micro-batches of forward and
// backward, GradSync over a one-rank communicator, clipping, the AdamW update - with the
// parameters on cuda:0 (GptOptions/BertOptions::device) on one side and on the host on the
// other. Compared: the initial parameters (drawn on the host either way: equal bit for
// bit), the step's loss, every parameter's gradient after the step (clipped alike: each
// side by its own norm) and every parameter after the update.
//
// Tolerances (what differs is only where and in which order sums run: cuBLAS's GEMMs, the
// fused attention, the column sums - and in bf16 the rounding of every GEMM input):
//  - fp32 (train.precision = fp32, exact fp32 GEMMs): loss relative 1e-5; each gradient
//    tensor max |g_gpu − g_cpu| <= 1e-4 · max |g_cpu| + 1e-9; the parameters after the
//    update max |w_gpu − w_cpu| <= 1e-4 · (the CPU update's largest move) + 1e-6 (a few
//    float32 units in the last place of a LayerNorm weight near 1, where the two updates
//    may round apart).
//  - bf16 (train.precision = bf16: GEMM inputs rounded to an 8-bit mantissa, 2^-9 ≈ 2e-3
//    relative each, fp32 sums): loss relative 1e-2; gradients 5e-2 · max |g_cpu| + 1e-7;
//    parameters 5e-2 · the largest move + 1e-6. The bf16 gradients must also differ from
//    the fp32 GPU ones by more than 1e-5 of a tensor's largest somewhere: else the bf16
//    tensor cores were not in use.
// AdamW's eps is 1 here, so that an update is ~lr · g (the first step of Adam with a small
// eps is lr · sign(g), which turns a tiny gradient's rounding into a full-size difference);
// the parameters after the step then carry the gradients' tolerance.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/buffer.h"
#include "core/device.h"
#include "core/kernels.h"
#include "core/rng.h"
#include "models/bert/bert.h"
#include "models/gpt/gpt.h"
#include "tests/support/solo_communicator.h"
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

struct Tolerance {
  const char* name;
  CudaMatmul matmul;
  double loss_rel, grad_rel, grad_abs, value_rel, value_abs;
};
const Tolerance kFp32{"fp32", CudaMatmul::kFp32, 1e-5, 1e-4, 1e-9, 1e-4, 1e-6};
const Tolerance kBf16{"bf16", CudaMatmul::kBf16, 1e-2, 5e-2, 1e-7, 5e-2, 1e-6};

// Sets the GPU matmul precision for the guard's lifetime (process-wide).
class MatmulPrecision {
 public:
  explicit MatmulPrecision(CudaMatmul m) { set_cuda_matmul(m); }
  ~MatmulPrecision() { set_cuda_matmul(CudaMatmul::kFp32); }
  MatmulPrecision(const MatmulPrecision&) = delete;
  MatmulPrecision& operator=(const MatmulPrecision&) = delete;
};

std::vector<float> to_host(const Tensor& t) {
  std::vector<float> host(size_t(t.numel()));
  copy_bytes(host.data(), Device::cpu(), t.data(), t.device(), t.nbytes());
  return host;
}

// What one step leaves: its loss, the gradients and the parameters, on the host.
struct StepResult {
  double loss = 0.0;
  std::vector<float> init, grads, values;
};

// Per parameter: max |got − want| <= rel · max |want| + abs.
void expect_close_per_param(const ParamStore& layout, const std::vector<float>& got,
                            const std::vector<float>& want, double rel, double abs, const std::string& what) {
  for (int i = 0; i < layout.size(); ++i) {
    const ParamStore::Entry& e = layout.entry(i);
    double worst = 0.0, scale = 0.0;
    int64_t at = 0;
    for (int64_t k = e.offset; k < e.offset + e.numel; ++k) {
      scale = std::max(scale, double(std::fabs(want[size_t(k)])));
      const double d = std::fabs(double(got[size_t(k)]) - double(want[size_t(k)]));
      if (d > worst) worst = d, at = k - e.offset;
    }
    EXPECT_LE(worst, rel * scale + abs) << what << ": " << e.name << " element " << at << " differs by "
                                        << worst << " (largest |cpu| " << scale << ")";
  }
}

// The parameters after the step: max |got − want| <= rel · (the CPU's largest move) + abs.
void expect_values_close(const StepResult& got, const StepResult& want, double rel, double abs,
                         const std::string& what) {
  double moved = 0.0, worst = 0.0;
  for (size_t k = 0; k < want.values.size(); ++k) {
    moved = std::max(moved, double(std::fabs(want.values[k] - want.init[k])));
    worst = std::max(worst, double(std::fabs(got.values[k] - want.values[k])));
  }
  EXPECT_GT(moved, 100 * abs) << what << ": the CPU step hardly moved the parameters (the comparison would "
                                      "not see an update that was skipped)";
  EXPECT_LE(worst, rel * moved + abs) << what << ": parameters after the update differ by " << worst
                                      << " (the CPU update moved them by up to " << moved << ")";
}

void expect_step_close(const ParamStore& layout, const StepResult& gpu, const StepResult& cpu,
                       const Tolerance& tol, const std::string& model) {
  const std::string what = model + " " + tol.name;
  ASSERT_EQ(gpu.init.size(), cpu.init.size());
  EXPECT_TRUE(gpu.init == cpu.init) << what << ": the initial parameters differ (init draws on the host)";
  EXPECT_NEAR(gpu.loss, cpu.loss, tol.loss_rel * std::fabs(cpu.loss)) << what << ": step loss";
  expect_close_per_param(layout, gpu.grads, cpu.grads, tol.grad_rel, tol.grad_abs, what + " gradient");
  expect_values_close(gpu, cpu, tol.value_rel, tol.value_abs, what);
}

// Some parameter's gradient differs by more than 1e-5 of its tensor's largest.
bool differs_somewhere(const ParamStore& layout, const std::vector<float>& a, const std::vector<float>& b) {
  for (int i = 0; i < layout.size(); ++i) {
    const ParamStore::Entry& e = layout.entry(i);
    double scale = 0.0, worst = 0.0;
    for (int64_t k = e.offset; k < e.offset + e.numel; ++k) {
      scale = std::max(scale, double(std::fabs(b[size_t(k)])));
      worst = std::max(worst, double(std::fabs(a[size_t(k)] - b[size_t(k)])));
    }
    if (worst > 1e-5 * scale) return true;
  }
  return false;
}

// ---- GPT ------------------------------------------------------------------------------

// Windows of ids drawn from the index: any id of the vocabulary, every position.
class RandomWindows final : public WindowSource {
 public:
  RandomWindows(int64_t seq_len, int vocab) : T_(seq_len), V_(vocab) {}
  int64_t windows_per_epoch() const override { return 1000; }
  int64_t seq_len() const override { return T_; }
  void window(int64_t index, int32_t* out) const override {
    Rng rng(77, uint64_t(index), RngPurpose::kTest);
    for (int64_t t = 0; t <= T_; ++t) out[t] = int32_t(rng.below(uint64_t(V_)));
  }

 private:
  int64_t T_;
  int V_;
};

GptOptions gpt_options(Device device) {
  GptOptions o;
  o.shape.n_layer = 2;
  o.shape.n_head = 3;
  o.shape.d_model = 24;
  o.shape.n_positions = 16;
  o.shape.vocab_size = 37;
  o.seq_len = 13;
  o.batch_size = 5;
  o.micro_batch = 3;   // 3 + 2: gradients accumulate over uneven micro-batches
  o.steps = 10;
  o.lr = 1e-2;
  o.warmup_steps = 0;
  o.eps = 1.0;         // see the file comment
  o.eval_every = 0;
  o.seed = 9;
  o.device = device;
  return o;
}

StepResult gpt_step(Device device) {
  RandomWindows train(13, 37);
  test::SoloCommunicator comm;
  Gpt m(gpt_options(device), comm, &train, nullptr);
  StepResult r;
  r.init = to_host(m.params().values());
  const StepStats s = m.train_step(StepContext{0, &comm, device, &comm});
  r.loss = s.loss_sum / double(s.examples);
  r.grads = to_host(m.params().grads());
  r.values = to_host(m.params().values());
  return r;
}

TEST(ModelStepGpu, GptStepEqualsTheCpuStep) {
  LOOM_REQUIRE_GPU();
  const StepResult cpu = gpt_step(Device::cpu());
  RandomWindows train(13, 37);
  test::SoloCommunicator comm;
  Gpt layout(gpt_options(Device::cpu()), comm, &train, nullptr);
  StepResult fp32;
  {
    MatmulPrecision p(kFp32.matmul);
    fp32 = gpt_step(kGpu);
    expect_step_close(layout.params(), fp32, cpu, kFp32, "gpt");
  }
  {
    MatmulPrecision p(kBf16.matmul);
    const StepResult bf16 = gpt_step(kGpu);
    expect_step_close(layout.params(), bf16, cpu, kBf16, "gpt");
    EXPECT_TRUE(differs_somewhere(layout.params(), bf16.grads, fp32.grads))
        << "train.precision bf16 gave the fp32 GPU gradients: bf16 GEMMs not in use";
  }
}

TEST(ModelStepGpu, GptHeldOutLossOnTheGpuEqualsTheCpus) {
  LOOM_REQUIRE_GPU();
  RandomWindows train(13, 37), heldout(13, 37);
  test::SoloCommunicator comm;
  Gpt cpu(gpt_options(Device::cpu()), comm, &train, &heldout);
  Gpt gpu(gpt_options(kGpu), comm, &train, &heldout);
  const GptEval a = cpu.evaluate_heldout(comm, 7), b = gpu.evaluate_heldout(comm, 7);
  EXPECT_EQ(a.windows, b.windows);
  EXPECT_NEAR(b.loss, a.loss, 1e-5 * a.loss);
}

// ---- BERT -----------------------------------------------------------------------------

// Pairs of random lengths padded to T, 1..P masked positions (the rest empty slots), NSP
// labels of both kinds: padding, key masks, empty slots and both heads all take part.
class RandomPairs final : public BertExampleSource {
 public:
  static constexpr int32_t kPad = 0, kCls = 1, kSep = 2, kMask = 3;
  RandomPairs(int64_t seq_len, int64_t max_predictions, int vocab) : T_(seq_len), P_(max_predictions), V_(vocab) {}
  int64_t examples_per_epoch() const override { return 1000; }
  int64_t seq_len() const override { return T_; }
  int64_t max_predictions() const override { return P_; }
  void example(int64_t index, const BertExampleSlot& out) const override {
    Rng rng(78, uint64_t(index), RngPurpose::kTest);
    const int64_t len = 5 + int64_t(rng.below(uint64_t(T_ - 4)));   // [5, T]
    for (int64_t t = 0; t < T_; ++t) {
      const bool real = t < len;
      out.tokens[t] = !real ? kPad : t == 0 ? kCls : (t == len - 1 || t == len / 2) ? kSep
                                                   : int32_t(4 + rng.below(uint64_t(V_ - 4)));
      out.segments[t] = real && t > len / 2 ? 1 : 0;
      out.mask[t] = real ? 1 : 0;
    }
    const int64_t masked = 1 + int64_t(rng.below(uint64_t(P_)));
    for (int64_t p = 0; p < P_; ++p) {
      const int64_t pos = 1 + p;   // inside A: never [CLS]; may be [SEP], fine for a label
      if (p < masked && pos < len) {
        out.positions[p] = int32_t(pos);
        out.labels[p] = out.tokens[pos];
        out.tokens[pos] = kMask;
      } else {
        out.positions[p] = -1;
        out.labels[p] = -1;
      }
    }
    *out.nsp = int32_t(rng.below(2));
  }

 private:
  int64_t T_, P_;
  int V_;
};

BertOptions bert_options(Device device) {
  BertOptions o;
  o.shape.vocab_size = 29;
  o.shape.hidden = 24;
  o.shape.n_layer = 2;
  o.shape.n_head = 3;
  o.shape.intermediate = 40;
  o.shape.max_position = 16;
  o.shape.pad_id = RandomPairs::kPad;
  o.seq_len = 11;
  o.max_predictions = 3;
  o.batch_size = 5;
  o.micro_batch = 3;
  o.steps = 10;
  o.lr = 1e-2;
  o.warmup_steps = 0;
  o.eps = 1.0;   // see the file comment
  o.eval_every = 0;
  o.seed = 13;
  o.device = device;
  return o;
}

StepResult bert_step(Device device) {
  RandomPairs train(11, 3, 29);
  test::SoloCommunicator comm;
  Bert m(bert_options(device), comm, &train, nullptr);
  StepResult r;
  r.init = to_host(m.params().values());
  const StepStats s = m.train_step(StepContext{0, &comm, device, &comm});
  r.loss = s.loss_sum / double(s.examples);
  r.grads = to_host(m.params().grads());
  r.values = to_host(m.params().values());
  return r;
}

TEST(ModelStepGpu, BertStepEqualsTheCpuStep) {
  LOOM_REQUIRE_GPU();
  const StepResult cpu = bert_step(Device::cpu());
  RandomPairs train(11, 3, 29);
  test::SoloCommunicator comm;
  Bert layout(bert_options(Device::cpu()), comm, &train, nullptr);
  StepResult fp32;
  {
    MatmulPrecision p(kFp32.matmul);
    fp32 = bert_step(kGpu);
    expect_step_close(layout.params(), fp32, cpu, kFp32, "bert");
  }
  {
    MatmulPrecision p(kBf16.matmul);
    const StepResult bf16 = bert_step(kGpu);
    expect_step_close(layout.params(), bf16, cpu, kBf16, "bert");
    EXPECT_TRUE(differs_somewhere(layout.params(), bf16.grads, fp32.grads))
        << "train.precision bf16 gave the fp32 GPU gradients: bf16 GEMMs not in use";
  }
}

TEST(ModelStepGpu, BertHeldOutLossAndAccuracyOnTheGpuEqualTheCpus) {
  LOOM_REQUIRE_GPU();
  RandomPairs train(11, 3, 29), heldout(11, 3, 29);
  test::SoloCommunicator comm;
  Bert cpu(bert_options(Device::cpu()), comm, &train, &heldout);
  Bert gpu(bert_options(kGpu), comm, &train, &heldout);
  const BertEval a = cpu.evaluate_heldout(comm, 9), b = gpu.evaluate_heldout(comm, 9);
  EXPECT_EQ(a.examples, b.examples);
  EXPECT_NEAR(b.mlm_loss, a.mlm_loss, 1e-5 * a.mlm_loss);
  EXPECT_NEAR(b.nsp_loss, a.nsp_loss, 1e-5 * a.nsp_loss);
  // Argmax counts: equal unless two logits tie within the rounding (not at these sizes).
  EXPECT_DOUBLE_EQ(b.mlm_accuracy, a.mlm_accuracy);
  EXPECT_DOUBLE_EQ(b.nsp_accuracy, a.nsp_accuracy);
}

}  // namespace
}  // namespace loom
