// loom's side of bench/gpu.sh: whole GPT or BERT training steps on one GPU through the
// same Gpt / Bert train_step that `loom train` runs with run.device = "cuda" (forward and
// backward over the micro-batches, clipping, the AdamW update; GradSync over a one-rank
// communicator, which sends nothing), on random ids. No MPI is started, so the binary runs
// on a GPU machine without an MPI installation as long as its shared libraries are found
// (bench/gpu.sh, "Running on a lent GPU machine").
//
//   gpu_step_bench --model gpt|bert [--precision fp32|tf32|bf16] [--steps 20] [--warmup 3]
//                  [--batch B] [--micro-batch M] [--seq T] [--predictions P]
//                  [--peak-tflops 989.4]
//   gpt:  GPT-2 124M (vocab 50257, 12 layers, 12 heads, d 768), seq 1024, batch 8
//   bert: BERT-base (vocab 30522, 12 layers, 12 heads, hidden 768, intermediate 3072),
//         seq 128, 20 masked positions, batch 64
// Prints tokens/s over the timed steps, the model FLOP rate (the matmuls' forward +
// backward FLOPs, Gpt::step_matmul_flops / 3 x BertNet::matmul_flops) and MFU against
// --peak-tflops (dense bf16 of an H100 SXM / H200: 989.4), and a last line RESULT {json}.
// Without a GPU it exits 2 with a message saying so.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/error.h"
#include "core/kernels.h"
#include "core/rng.h"
#include "dist/communicator.h"
#include "models/bert/bert.h"
#include "models/gpt/gpt.h"

namespace loom {
namespace {

int arg_int(int argc, char** argv, const char* name, int fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::atoi(argv[i + 1]);
  return fallback;
}

double arg_real(int argc, char** argv, const char* name, double fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::atof(argv[i + 1]);
  return fallback;
}

std::string arg_str(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return fallback;
}

// One rank, no peers: every collective is the identity (what GradSync does at world size
// 1 over any backend, without MPI or NCCL in the process).
class OneRank final : public Communicator {
 public:
  class Done final : public Work {
   public:
    void wait() override {}
    bool done() override { return true; }
  };
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string_view backend() const override { return "one-rank"; }
  MpiCommHandle mpi_comm() const override { return {}; }
  void allreduce(Tensor, const CollectiveOptions&) override {}
  std::unique_ptr<Work> allreduce_async(Tensor, const CollectiveOptions&) override {
    return std::make_unique<Done>();
  }
  void broadcast(Tensor, int) override {}
  void allgatherv(Tensor, Tensor, std::span<const int64_t>) override {
    throw Error("gpu_step_bench: allgatherv is not used");
  }
  void alltoallv(Tensor, std::span<const int64_t>, Tensor, std::span<const int64_t>) override {
    throw Error("gpu_step_bench: alltoallv is not used");
  }
  void barrier() override {}
  [[noreturn]] void abort(std::string_view why, int exit_code) override {
    std::fprintf(stderr, "gpu_step_bench: %.*s\n", int(why.size()), why.data());
    std::exit(exit_code);
  }
};

class RandomWindows final : public WindowSource {
 public:
  RandomWindows(int64_t seq_len, int vocab) : T_(seq_len), V_(vocab) {}
  int64_t windows_per_epoch() const override { return int64_t(1) << 30; }
  int64_t seq_len() const override { return T_; }
  void window(int64_t index, int32_t* out) const override {
    Rng rng(1, uint64_t(index), RngPurpose::kTest);
    for (int64_t t = 0; t <= T_; ++t) out[t] = int32_t(rng.below(uint64_t(V_)));
  }

 private:
  int64_t T_;
  int V_;
};

// Full-length pairs (no padding: as PyTorch's random batches), P masked positions spread
// over the sequence, random NSP labels.
class RandomPairs final : public BertExampleSource {
 public:
  RandomPairs(int64_t seq_len, int64_t predictions, int vocab) : T_(seq_len), P_(predictions), V_(vocab) {}
  int64_t examples_per_epoch() const override { return int64_t(1) << 30; }
  int64_t seq_len() const override { return T_; }
  int64_t max_predictions() const override { return P_; }
  void example(int64_t index, const BertExampleSlot& out) const override {
    Rng rng(2, uint64_t(index), RngPurpose::kTest);
    for (int64_t t = 0; t < T_; ++t) {
      out.tokens[t] = int32_t(1 + rng.below(uint64_t(V_ - 1)));
      out.segments[t] = t >= T_ / 2 ? 1 : 0;
      out.mask[t] = 1;
    }
    for (int64_t p = 0; p < P_; ++p) {
      const int64_t pos = 1 + p * (T_ - 1) / P_;
      out.positions[p] = int32_t(pos);
      out.labels[p] = out.tokens[pos];
    }
    *out.nsp = int32_t(rng.below(2));
  }

 private:
  int64_t T_, P_;
  int V_;
};

int run(int argc, char** argv) {
  const std::string model = arg_str(argc, argv, "--model", "gpt");
  const std::string precision = arg_str(argc, argv, "--precision", "bf16");
  const int steps = arg_int(argc, argv, "--steps", 20), warmup = arg_int(argc, argv, "--warmup", 3);
  const double peak_tflops = arg_real(argc, argv, "--peak-tflops", 989.4);
  if (!cuda_available()) {
    std::fprintf(stderr,
                 "gpu_step_bench: no CUDA device visible (CUDA runtime %s, driver %s, CUDA_VISIBLE_DEVICES=%s): "
                 "run it on a GPU machine\n",
                 cuda_runtime_version().c_str(), cuda_driver_version().c_str(),
                 std::getenv("CUDA_VISIBLE_DEVICES") ? std::getenv("CUDA_VISIBLE_DEVICES") : "(unset)");
    return 2;
  }
  if (precision == "fp32") {
    set_cuda_matmul(CudaMatmul::kFp32);
  } else if (precision == "tf32") {
    set_cuda_matmul(CudaMatmul::kTf32);
  } else if (precision == "bf16") {
    set_cuda_matmul(CudaMatmul::kBf16);
  } else {
    std::fprintf(stderr, "gpu_step_bench: --precision %s: expected fp32, tf32 or bf16\n", precision.c_str());
    return 2;
  }
  const Device gpu = Device::cuda(0);
  OneRank comm;
  std::unique_ptr<Model> m;
  std::unique_ptr<WindowSource> windows;
  std::unique_ptr<BertExampleSource> pairs;
  int64_t B = 0, T = 0;
  double step_flops = 0.0;
  int64_t params = 0;
  if (model == "gpt") {
    GptOptions o;
    o.shape.n_layer = 12, o.shape.n_head = 12, o.shape.d_model = 768;
    o.shape.n_positions = 1024, o.shape.vocab_size = 50257;
    o.seq_len = T = arg_int(argc, argv, "--seq", 1024);
    o.batch_size = B = arg_int(argc, argv, "--batch", 8);
    o.micro_batch = arg_int(argc, argv, "--micro-batch", 0);
    o.steps = warmup + steps;
    o.eval_every = 0;
    o.device = gpu;
    windows = std::make_unique<RandomWindows>(T, o.shape.vocab_size);
    auto g = std::make_unique<Gpt>(o, comm, windows.get(), nullptr);
    step_flops = g->step_matmul_flops();
    params = g->params().parameter_count();
    m = std::move(g);
  } else if (model == "bert") {
    BertOptions o;   // BertShape defaults: BERT-base
    o.shape.vocab_size = 30522;
    o.seq_len = T = arg_int(argc, argv, "--seq", 128);
    o.max_predictions = arg_int(argc, argv, "--predictions", T >= 512 ? 80 : 20);
    o.batch_size = B = arg_int(argc, argv, "--batch", 64);
    o.micro_batch = arg_int(argc, argv, "--micro-batch", 0);
    o.steps = warmup + steps;
    o.eval_every = 0;
    o.device = gpu;
    pairs = std::make_unique<RandomPairs>(T, o.max_predictions, o.shape.vocab_size);
    auto b = std::make_unique<Bert>(o, comm, pairs.get(), nullptr);
    step_flops = 3.0 * b->net().matmul_flops(B, T, o.max_predictions);
    params = b->params().parameter_count();
    m = std::move(b);
  } else {
    std::fprintf(stderr, "gpu_step_bench: --model %s: expected gpt or bert\n", model.c_str());
    return 2;
  }
  std::printf("loom %s on %s (%s), %s matmuls: %.2f M parameters, batch %lld x %lld tokens\n", model.c_str(),
              gpu.str().c_str(), cuda_device_name(0).c_str(), precision.c_str(), double(params) / 1e6,
              static_cast<long long>(B), static_cast<long long>(T));
  std::vector<double> times;
  double loss = 0.0;
  for (int s = 0; s < warmup + steps; ++s) {
    const auto t0 = std::chrono::steady_clock::now();
    // train_step ends with a device-to-host read (the loss, the clipping norm): the time
    // is the GPU's.
    const StepStats st = m->train_step(StepContext{s, &comm, gpu, &comm});
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    loss = st.loss_sum / double(std::max<int64_t>(st.examples, 1));
    if (s >= warmup) times.push_back(dt);
  }
  double total = 0.0;
  for (double t : times) total += t;
  std::sort(times.begin(), times.end());
  const double tokens_per_s = double(B * T) * double(steps) / total;
  const double tflops = step_flops * double(steps) / total / 1e12;
  const double mfu = tflops / peak_tflops;
  std::printf("%d timed steps after %d warm-up: %.3f s, %.0f tokens/s, step median %.1f ms, "
              "%.1f TFLOP/s, MFU %.1f %% of %.1f, loss %.3f\n",
              steps, warmup, total, tokens_per_s, times[times.size() / 2] * 1e3, tflops, 100 * mfu,
              peak_tflops, loss);
  std::printf("RESULT {\"tool\": \"loom\", \"model\": \"%s\", \"precision\": \"%s\", \"batch\": %lld, "
              "\"seq\": %lld, \"steps\": %d, \"seconds\": %.6f, \"tokens_per_s\": %.1f, "
              "\"tflops\": %.3f, \"mfu\": %.4f, \"loss\": %.4f}\n",
              model.c_str(), precision.c_str(), static_cast<long long>(B), static_cast<long long>(T), steps,
              total, tokens_per_s, tflops, mfu, loss);
  return 0;
}

}  // namespace
}  // namespace loom

int main(int argc, char** argv) {
  try {
    return loom::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_step_bench: %s\n", e.what());
    return 1;
  }
}
