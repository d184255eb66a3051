// Forward + backward tokens/s of BertNet (models/bert/bert_net.h) alone, float32 on the
// CPU: random tokens, full-length sequences, P masked positions per sequence, NSP labels.
// No optimizer step (see bench/bert_net_torch.py for PyTorch's side, which includes AdamW).
//
//   bert_net_bench [--threads 2] [--steps 10] [--warmup 2] [--shape tiny|base]
//                  [--batch 16] [--seq 128] [--predictions 20]
//   tiny: vocab 8192, 4 layers, 4 heads, hidden 256, intermediate 1024
//   base: BERT-base (vocab 30522, 12 layers, 12 heads, hidden 768, intermediate 3072)
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/kernels.h"
#include "core/rng.h"
#include "models/bert/bert_net.h"

namespace {

int arg_int(int argc, char** argv, const char* name, int fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return std::atoi(argv[i + 1]);
  return fallback;
}

std::string arg_str(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace loom;
  const int threads = arg_int(argc, argv, "--threads", 2);
  const int steps = arg_int(argc, argv, "--steps", 10), warmup = arg_int(argc, argv, "--warmup", 2);
  const int64_t B = arg_int(argc, argv, "--batch", 16), T = arg_int(argc, argv, "--seq", 128);
  const int64_t P = arg_int(argc, argv, "--predictions", 20);
  const std::string which = arg_str(argc, argv, "--shape", "tiny");
  BertShape s;   // BERT-base by default
  if (which == "tiny") {
    s.vocab_size = 8192;
    s.n_layer = 4;
    s.n_head = 4;
    s.hidden = 256;
    s.intermediate = 1024;
  }
  set_kernel_threads(threads);
  BertNet net(s, B, T, P);
  net.init(1);
  Rng rng(7, 0, RngPurpose::kTest);
  std::vector<int32_t> tokens(size_t(B * T)), segments(size_t(B * T)), mask(size_t(B * T), 1);
  std::vector<int32_t> positions(size_t(B * P)), labels(size_t(B * P)), nsp(static_cast<size_t>(B));
  for (int64_t i = 0; i < B * T; ++i) {
    tokens[size_t(i)] = int32_t(1 + rng.below(uint64_t(s.vocab_size - 1)));
    segments[size_t(i)] = (i % T) < T / 2 ? 0 : 1;
  }
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t p = 0; p < P; ++p) {   // P distinct positions after [CLS]
      positions[size_t(b * P + p)] = int32_t(1 + (p * (T - 1)) / P);
      labels[size_t(b * P + p)] = int32_t(rng.below(uint64_t(s.vocab_size)));
    }
    nsp[size_t(b)] = int32_t(b % 2);
  }
  BertInputs in;
  in.tokens = Tensor(tokens.data(), {B, T}, DType::kI32);
  in.segments = Tensor(segments.data(), {B, T}, DType::kI32);
  in.key_mask = Tensor(mask.data(), {B, T}, DType::kI32);
  in.mlm_positions = Tensor(positions.data(), {B, P}, DType::kI32);
  in.mlm_labels = Tensor(labels.data(), {B, P}, DType::kI32);
  in.nsp_labels = Tensor(nsp.data(), {B}, DType::kI32);

  double loss = 0.0;
  auto step = [&] {
    net.params().zero_grads();
    BertLosses l = net.forward(in);
    net.backward(1.0 / double(l.mlm_count), 1.0 / double(l.nsp_count));
    loss = l.mlm_loss / double(l.mlm_count) + l.nsp_loss / double(l.nsp_count);
  };
  for (int i = 0; i < warmup; ++i) step();
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) step();
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const double tokens_per_s = double(B * T) * steps / secs;
  const double gflops = 3.0 * net.matmul_flops(B, T, P) * steps / secs / 1e9;
  std::printf("bert_net %s: B=%lld T=%lld P=%lld threads=%d params=%lld: %.1f ms/step, "
              "%.0f tokens/s, matmul %.1f GFLOP/s (3x forward), loss %.4f\n",
              which.c_str(), (long long)B, (long long)T, (long long)P, threads,
              (long long)net.params().parameter_count(), 1e3 * secs / steps, tokens_per_s, gflops,
              loss);
  return 0;
}
