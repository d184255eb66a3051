// Forward + backward time of each transformer kernel family (core/kernels.h) on the CPU
// reference at GPT shapes; by default gpt-tiny's (B=8, T=256, C=256, H=4, V=8192).
// Usage: bench_kernels [B T C H V [reps [only]]]   (threads: OMP_NUM_THREADS /
// OPENBLAS_NUM_THREADS; `only`: run the families whose name contains it)
// Prints one line per family: the best and the median of `reps` runs, in milliseconds.
// Speed is measured here, never asserted in tests (STYLE.md rule 19).
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <vector>

#include "core/kernels.h"
#include "core/rng.h"

namespace {

using loom::Tensor;

struct Buf {
  std::vector<float> v;
  explicit Buf(int64_t n, uint64_t stream = 0) : v(static_cast<size_t>(n)) {
    loom::Rng rng(stream, 0, loom::RngPurpose::kTest);
    for (float& x : v) x = static_cast<float>(rng.uniform() - 0.5);
  }
  Tensor t(loom::Shape s) { return Tensor(v.data(), s, loom::DType::kF32); }
};

const char* g_only = nullptr;

void report(const char* name, int reps, const std::function<void()>& step) {
  if (g_only != nullptr && std::strstr(name, g_only) == nullptr) return;
  step();   // warm-up: page faults, BLAS buffers
  std::vector<double> ms;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    step();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("%-28s best %8.3f ms   median %8.3f ms\n", name, ms.front(), ms[ms.size() / 2]);
}

}  // namespace

int main(int argc, char** argv) {
  int64_t B = 8, T = 256, C = 256, H = 4, V = 8192;
  int reps = 20;
  if (argc >= 6) {
    B = std::atoll(argv[1]), T = std::atoll(argv[2]), C = std::atoll(argv[3]);
    H = std::atoll(argv[4]), V = std::atoll(argv[5]);
  }
  if (argc >= 7) reps = std::atoi(argv[6]);
  if (argc >= 8) g_only = argv[7];
  const int64_t N = B * T;
  std::printf("B=%lld T=%lld C=%lld H=%lld V=%lld, %d OpenMP threads, %d reps\n",
              static_cast<long long>(B), static_cast<long long>(T), static_cast<long long>(C),
              static_cast<long long>(H), static_cast<long long>(V), omp_get_max_threads(), reps);

  std::vector<int32_t> tokens(static_cast<size_t>(N));
  for (int64_t n = 0; n < N; ++n) tokens[static_cast<size_t>(n)] = static_cast<int32_t>((n * 7919) % V);
  Tensor tok(tokens.data(), {B, T}, loom::DType::kI32);
  Tensor tgt(tokens.data(), {N}, loom::DType::kI32);

  Buf x(N * C, 1), y(N * C, 2), dy(N * C, 3), dx(N * C), wte(V * C, 4), wpe(T * C, 5),
      dwte(V * C), dwpe(T * C), w(C, 6), b(C, 7), dw(C), db(C), mean(N), rstd(N);
  report("embedding fwd+bwd", reps, [&] {
    loom::embedding_forward(y.t({B, T, C}), tok, Tensor{}, wte.t({V, C}), wpe.t({T, C}), Tensor{});
    loom::embedding_backward(dwte.t({V, C}), dwpe.t({T, C}), Tensor{}, dy.t({B, T, C}), tok, Tensor{});
  });
  report("layernorm fwd+bwd", reps, [&] {
    loom::layernorm_forward(y.t({B, T, C}), mean.t({N}), rstd.t({N}), x.t({B, T, C}), w.t({C}),
                            b.t({C}), 1e-5);
    loom::layernorm_backward(dx.t({B, T, C}), dw.t({C}), db.t({C}), dy.t({B, T, C}),
                             x.t({B, T, C}), w.t({C}), mean.t({N}), rstd.t({N}));
  });
  report("residual fwd+bwd", reps, [&] {
    loom::residual_forward(y.t({B, T, C}), x.t({B, T, C}), dy.t({B, T, C}));
    loom::residual_backward(dx.t({B, T, C}), dy.t({B, T, C}));
  });
  {
    Buf h(N * 4 * C, 8), g(N * 4 * C), dh(N * 4 * C, 9);
    for (auto form : {loom::GeluForm::kTanh, loom::GeluForm::kErf})
      report(form == loom::GeluForm::kTanh ? "gelu tanh fwd+bwd (N, 4C)" : "gelu erf fwd+bwd (N, 4C)",
             reps, [&] {
               loom::gelu_forward(g.t({N, 4 * C}), h.t({N, 4 * C}), form);
               loom::gelu_backward(dh.t({N, 4 * C}), dh.t({N, 4 * C}), h.t({N, 4 * C}), form);
             });
  }
  {
    Buf qkv(N * 3 * C, 10), dqkv(N * 3 * C), out(N * C), dout(N * C, 11), att(B * H * T * T),
        datt(B * H * T * T), lse(B * H * T), rowdot(B * H * T);
    // With att: the CPU models' path (attention_saves_probabilities); lse only: the path
    // the CUDA kernels take, as plain loops on the CPU (Note [Attention from lse]).
    auto fwd = [&](bool causal, bool save_p) {
      loom::attention_forward(out.t({B, T, C}), lse.t({B, H, T}),
                              save_p ? att.t({B, H, T, T}) : Tensor{}, qkv.t({B, T, 3 * C}),
                              Tensor{}, static_cast<int>(H), causal);
    };
    auto bwd = [&](bool causal, bool save_p) {
      loom::attention_backward(dqkv.t({B, T, 3 * C}),
                               save_p ? datt.t({B, H, T, T}) : rowdot.t({B, H, T}),
                               dout.t({B, T, C}), qkv.t({B, T, 3 * C}), out.t({B, T, C}),
                               lse.t({B, H, T}), save_p ? att.t({B, H, T, T}) : Tensor{},
                               Tensor{}, static_cast<int>(H), causal);
    };
    report("attention causal fwd", reps, [&] { fwd(true, true); });
    report("attention causal fwd+bwd", reps, [&] {
      fwd(true, true);
      bwd(true, true);
    });
    report("attention full fwd+bwd", reps, [&] {
      fwd(false, true);
      bwd(false, true);
    });
    report("attention causal fwd+bwd lse only", reps / 4 + 1, [&] {
      fwd(true, false);
      bwd(true, false);
    });
  }
  {
    Buf logits(N * V, 12), loss(N), lse(N);
    std::vector<float> saved = logits.v;
    report("softmax xent fwd+bwd", reps, [&] {
      std::copy(saved.begin(), saved.end(), logits.v.begin());   // in-place backward below
      loom::softmax_cross_entropy_forward(loss.t({N}), lse.t({N}), logits.t({N, V}), tgt, -100);
      loom::softmax_cross_entropy_backward(logits.t({N, V}), logits.t({N, V}), lse.t({N}), tgt,
                                           -100, 1.0 / static_cast<double>(N));
    });
    report("  (of which the copy)", reps,
           [&] { std::copy(saved.begin(), saved.end(), logits.v.begin()); });
    Buf wout(V * C, 13), dwout(V * C);
    report("linear lm_head fwd+bwd", reps / 4 + 1, [&] {   // context: the GEMM next to it
      loom::linear_forward(logits.t({N, V}), x.t({N, C}), wout.t({V, C}), Tensor{});
      loom::linear_backward(dx.t({N, C}), dwout.t({V, C}), Tensor{}, logits.t({N, V}),
                            x.t({N, C}), wout.t({V, C}));
    });
  }
  return 0;
}
