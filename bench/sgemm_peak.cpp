// sgemm_peak: OpenBLAS cblas_sgemm GFLOP/s on N threads (default 2) at 2048^3 and at the
// matrix shapes of a GPT training step (bench/gpt.sh prints loom's matmul rate against it).
//
//   sgemm_peak [THREADS] [SECONDS_PER_SHAPE]
//
// Each shape: C (M, N) = A (M, K) · B (K, N) with the transposes a GPT layer uses
// (forward x·Wᵀ, input gradient dy·W, weight gradient dyᵀ·x), one untimed call, then calls
// until SECONDS_PER_SHAPE (default 1) have passed; prints the mean rate and the best single
// call. The last line is "peak_gflops X": the best mean rate over the shapes.
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

namespace {

struct Shape {
  const char* what;
  int m, n, k;
  bool trans_a, trans_b;
};

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 2;
  const double budget_s = argc > 2 ? std::atof(argv[2]) : 1.0;
  openblas_set_num_threads(threads);
  // rows = tokens per step (gpt-tiny: 8 x 256 = 2048; GPT-2 124M: 4 x 256 = 1024)
  const std::vector<Shape> shapes = {
      {"square 2048^3", 2048, 2048, 2048, false, false},
      {"tiny c_attn fwd   x(2048,256) W(768,256)^T", 2048, 768, 256, false, true},
      {"tiny c_fc fwd     x(2048,256) W(1024,256)^T", 2048, 1024, 256, false, true},
      {"tiny head fwd     x(2048,256) wte(8192,256)^T", 2048, 8192, 256, false, true},
      {"tiny head dW      dy(2048,8192)^T x(2048,256)", 8192, 256, 2048, true, false},
      {"124M c_attn fwd   x(1024,768) W(2304,768)^T", 1024, 2304, 768, false, true},
      {"124M c_fc fwd     x(1024,768) W(3072,768)^T", 1024, 3072, 768, false, true},
      {"124M c_proj dx    dy(1024,768) W(768,3072)", 1024, 3072, 768, false, false},
      {"124M mlp dW       dy(1024,3072)^T x(1024,768)", 3072, 768, 1024, true, false},
      {"124M head fwd     x(1024,768) wte(50257,768)^T", 1024, 50257, 768, false, true},
  };
  std::printf("OpenBLAS %s, %d thread(s) (openblas_get_num_threads %d), %s per shape\n",
              openblas_get_config(), threads, openblas_get_num_threads(),
              (std::to_string(budget_s) + " s").c_str());
  std::mt19937 gen(1234);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  double peak = 0;
  for (const Shape& s : shapes) {
    std::vector<float> a(size_t(s.m) * s.k), b(size_t(s.k) * s.n), c(size_t(s.m) * s.n);
    for (float& v : a) v = dist(gen);
    for (float& v : b) v = dist(gen);
    // Row-major: A is (M, K) or stored (K, M) when transposed; B is (K, N) or stored (N, K).
    const int lda = s.trans_a ? s.m : s.k;
    const int ldb = s.trans_b ? s.k : s.n;
    auto call = [&] {
      cblas_sgemm(CblasRowMajor, s.trans_a ? CblasTrans : CblasNoTrans,
                  s.trans_b ? CblasTrans : CblasNoTrans, s.m, s.n, s.k, 1.0f, a.data(), lda,
                  b.data(), ldb, 0.0f, c.data(), s.n);
    };
    call();
    const double flops = 2.0 * s.m * s.n * s.k;
    int calls = 0;
    double best = 1e30;
    const auto t0 = std::chrono::steady_clock::now();
    do {
      const auto t1 = std::chrono::steady_clock::now();
      call();
      best = std::min(best, seconds_since(t1));
      ++calls;
    } while (seconds_since(t0) < budget_s);
    const double mean = flops * calls / seconds_since(t0) / 1e9;
    peak = std::max(peak, mean);
    std::printf("%-50s %8.1f GFLOP/s mean, %8.1f best call (%d calls)\n", s.what, mean,
                flops / best / 1e9, calls);
  }
  std::printf("peak_gflops %.1f\n", peak);
  return 0;
}
