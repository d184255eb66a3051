// CPU reference of layernorm (core/kernels.h), over the last dimension C:
//   mean = Σ x / C, var = Σ (x − mean)² / C (biased, as PyTorch), rstd = 1 / √(var + eps),
//   out = (x − mean) · rstd · weight + bias.
// Backward, with x̂ = (x − mean) · rstd and g = dout ⊙ weight:
//   din = rstd · (g − mean(g) − x̂ · mean(g ⊙ x̂)),
//   dweight += Σ_n dout ⊙ x̂,   dbias += Σ_n dout.
//
// The variance is the two-pass formula on the row (in cache): no cancellation as with
// E[x²] − mean². Row sums run in the kernel's precision through `omp simd` reductions -
// a fixed, compile-time order of partial sums, so results never depend on the threads.
// Rows go to threads; dweight and dbias, sums over rows, are a second pass split by
// columns (Note [Deterministic embedding gradients] in kernels_cpu_embedding.cpp has the
// reason).
#include <algorithm>
#include <cmath>

#include "core/kernels_cpu.h"
#include "core/kernels_cpu_detail.h"

namespace loom::cpu {
namespace {
using namespace detail;

constexpr int64_t kBlock = 64;   // columns per task of the dweight / dbias pass

template <class F>
void layernorm_forward_t(Tensor out_t, Tensor mean_t, Tensor rstd_t, Tensor in_t,
                         Tensor weight_t, Tensor bias_t, double eps) {
  const int64_t N = rows(in_t), C = weight_t.shape()[0];
  F* out = ptr<F>(out_t);                 // (N, C)
  F* mean = ptr<F>(mean_t);               // (N)
  F* rstd = ptr<F>(rstd_t);               // (N)
  const F* in = ptr<F>(in_t);             // (N, C)
  const F* weight = ptr<F>(weight_t);     // (C)
  const F* bias = ptr<F>(bias_t);         // (C) or null
  const F inv_c = C > 0 ? F(1) / F(C) : F(0);
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (int64_t n = 0; n < N; ++n) {
    const F* x = in + n * C;
    F* o = out + n * C;
    F sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t c = 0; c < C; ++c) sum += x[c];
    const F m = sum * inv_c;
    F sq = 0;
#pragma omp simd reduction(+ : sq)
    for (int64_t c = 0; c < C; ++c) sq += (x[c] - m) * (x[c] - m);
    const F r = F(1) / std::sqrt(sq * inv_c + F(eps));
    if (bias != nullptr) {
      for (int64_t c = 0; c < C; ++c) o[c] = (x[c] - m) * r * weight[c] + bias[c];
    } else {
      for (int64_t c = 0; c < C; ++c) o[c] = (x[c] - m) * r * weight[c];
    }
    mean[n] = m;
    rstd[n] = r;
  }
}

// din for every row; one pass over the row after its two sums.
template <class F>
void layernorm_din(F* din, const F* dout, const F* in, const F* weight, const F* mean,
                   const F* rstd, int64_t N, int64_t C) {
  const F inv_c = F(1) / F(C);
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (int64_t n = 0; n < N; ++n) {
    const F* x = in + n * C;
    const F* dy = dout + n * C;
    F* dx = din + n * C;
    const F m = mean[n], r = rstd[n];
    F sum_g = 0, sum_gx = 0;   // Σ g, Σ g ⊙ x̂
#pragma omp simd reduction(+ : sum_g, sum_gx)
    for (int64_t c = 0; c < C; ++c) {
      const F g = dy[c] * weight[c];
      sum_g += g;
      sum_gx += g * (x[c] - m) * r;
    }
    const F mean_g = sum_g * inv_c, mean_gx = sum_gx * inv_c;
    for (int64_t c = 0; c < C; ++c)
      dx[c] = r * (dy[c] * weight[c] - mean_g - (x[c] - m) * r * mean_gx);
  }
}

// dweight += Σ_n dout ⊙ x̂, dbias += Σ_n dout: columns split into blocks, rows in order.
template <class F>
void layernorm_dweight(F* dweight, F* dbias, const F* dout, const F* in, const F* mean,
                       const F* rstd, int64_t N, int64_t C) {
  const int64_t blocks = (C + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t c0 = blk * kBlock, w = std::min(kBlock, C - c0);
    F acc_w[kBlock] = {}, acc_b[kBlock] = {};
    for (int64_t n = 0; n < N; ++n) {
      const F* x = in + n * C + c0;
      const F* dy = dout + n * C + c0;
      const F m = mean[n], r = rstd[n];
      for (int64_t j = 0; j < w; ++j) {
        acc_w[j] += dy[j] * (x[j] - m) * r;
        acc_b[j] += dy[j];
      }
    }
    for (int64_t j = 0; j < w; ++j) dweight[c0 + j] += acc_w[j];
    if (dbias != nullptr)
      for (int64_t j = 0; j < w; ++j) dbias[c0 + j] += acc_b[j];
  }
}

template <class F>
void layernorm_backward_t(Tensor din_t, Tensor dweight_t, Tensor dbias_t, Tensor dout_t,
                          Tensor in_t, Tensor weight_t, Tensor mean_t, Tensor rstd_t) {
  const int64_t N = rows(in_t), C = weight_t.shape()[0];
  if (N == 0 || C == 0) return;
  F* din = ptr<F>(din_t);                 // (N, C)  written
  F* dweight = ptr<F>(dweight_t);         // (C)     accumulated
  F* dbias = ptr<F>(dbias_t);             // (C)     accumulated, or null
  const F* dout = ptr<F>(dout_t);         // (N, C)
  const F* in = ptr<F>(in_t);             // (N, C)
  const F* weight = ptr<F>(weight_t);     // (C)
  const F* mean = ptr<F>(mean_t);         // (N)
  const F* rstd = ptr<F>(rstd_t);         // (N)
  layernorm_din(din, dout, in, weight, mean, rstd, N, C);
  layernorm_dweight(dweight, dbias, dout, in, mean, rstd, N, C);
}

}  // namespace

void layernorm_forward(Tensor out, Tensor mean, Tensor rstd, Tensor in, Tensor weight,
                       Tensor bias, double eps) {
  if (is_f64(out)) return layernorm_forward_t<double>(out, mean, rstd, in, weight, bias, eps);
  layernorm_forward_t<float>(out, mean, rstd, in, weight, bias, eps);
}

void layernorm_backward(Tensor din, Tensor dweight, Tensor dbias, Tensor dout, Tensor in,
                        Tensor weight, Tensor mean, Tensor rstd) {
  if (is_f64(din))
    return layernorm_backward_t<double>(din, dweight, dbias, dout, in, weight, mean, rstd);
  layernorm_backward_t<float>(din, dweight, dbias, dout, in, weight, mean, rstd);
}

}  // namespace loom::cpu
