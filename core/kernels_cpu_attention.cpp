// CPU reference of multi-head self-attention (core/kernels.h). For one (b, h), with
// Q, K, V the (T, D) column blocks of head h in qkv (read in place: leading dimension 3C,
// no permute copies) and s = 1/√D, with att given (Note [Saved probabilities or lse] in
// core/kernels.h):
//   forward:  P = softmax_rows(s Q Kᵀ + mask)            att[b, h] (T, T)
//             lse = m + log Σ e^(S − m) per row           lse[b, h] (T)
//             O = P V                                    out[b, :, hD:(h+1)D], ld C
//   backward: dP = dO Vᵀ                                  scratch[b, h] (T, T)
//             dV = Pᵀ dO
//             dS = P ⊙ (dP − rowsum(dP ⊙ P)) · s          in place of dP
//             dQ = dS K,  dK = dSᵀ Q                      dqkv, ld 3C
// Without att, Note [Attention from lse].
//
// Note [Attention from lse]
// The path without att is the one the CUDA kernels take (core/cuda/attention.cu), written
// as plain loops over (query, key) pairs in the same order of ideas, so that it can be
// tested here; it is not tuned (the CPU models save P: attention_saves_probabilities).
// Forward, per query t: an online softmax over its visible keys - running max m, running
// sum l, and out's row itself as the accumulator, rescaled by e^(m_old − m_new) when m
// grows - then out = acc / l and lse = m + log l (+inf, and out zeros, when no key is
// visible). Backward: first Dᵢ = rowsum(dOᵢ ⊙ Oᵢ) (= rowsum(dPᵢ ⊙ Pᵢ), since Oᵢ = Σ_s Pᵢₛ vₛ)
// into the (B, H, T) scratch, then one walk over the visible pairs (t, s):
//   P = e^(s qₜ·kₛ − lseₜ), dP = dOₜ·vₛ, dS = P (dP − Dₜ) s,
//   dVₛ += P dOₜ,  dKₛ += dS qₜ,  dQₜ += dS kₛ.
// A row with lse = +inf has P = 0 on every key: zeros, no special case. Allocates nothing.
//
// Note [Causal blocks]
// With a causal mask, query t sees keys s <= t: P is lower triangular. The rows are cut
// into blocks of kRowBlock; the block of rows [t0, t1) multiplies only keys [0, t1), so
// the GEMMs skip most of the upper triangle (at T = 256: 62.5% of the full work). Inside
// the diagonal block they still touch s in (t, t1), so P and dS must hold exact zeros
// there: the softmax writes zeros above the diagonal (the whole upper triangle, so att is
// the full matrix of probabilities), and dS is written as zeros up to the block's end.
// The column-blocked GEMMs of dV and dK use the same blocks transposed: keys [s0, s1)
// are seen by queries [s0, T) only. Masked keys have P = 0 and hence dS = 0, and a query
// whose keys are all masked gets a row of zeros (no 0/0).
//
// Note [Attention threading]
// The work is B·H independent heads. Two ways to use the cores: OpenMP over (b, h) with a
// single-threaded BLAS inside (SerialBlas), or a serial loop over heads with
// multi-threaded BLAS. Calling the pthread OpenBLAS that the build links from several
// OpenMP threads at once while it runs its own thread pool oversubscribes the cores (and
// older versions are not reentrant), hence SerialBlas around the parallel region.
// Heads in parallel: with an idle machine this needs no synchronisation but the region's
// end, parallelises the softmax too, and avoids OpenBLAS's hand-off on small GEMMs
// (M = 64, N <= T, K = D). Heads are handed out dynamically (one at a time) so a thread
// preempted on a shared machine does not hold the others at the barrier; which thread
// computes a head changes nothing in the result.
// Measured (bench/bench_kernels, causal forward + backward, best of 30-60, 2 threads) on
// the 2-core build machine while it was shared (load average ~6, so no configuration
// beat one thread): T=256, D=64 (B=8, C=256, H=4): heads in parallel 93-105 ms, serial
// heads with 2 BLAS threads 78-105 ms, one thread 97 ms; T=64, D=32 (B=8, C=128, H=4):
// 4.7 / 4.7 / 4.7 ms - but 20 ms for heads in parallel under libgomp's default active
// wait policy (spinning threads fight for the oversubscribed cores; OMP_WAIT_POLICY=
// passive removes it). Re-measure on an idle machine before revisiting the choice.
// Determinism: each head is computed by one thread, with the same GEMM calls whatever
// the thread count.
#include <algorithm>
#include <cmath>
#include <limits>

#include "core/kernels_cpu.h"
#include "core/kernels_cpu_detail.h"

namespace loom::cpu {
namespace {
using namespace detail;

constexpr int64_t kRowBlock = 64;   // Note [Causal blocks]

// A dimension as a BLAS int. Every one is at most max(T, 3C), checked by fits_blas()
// before the parallel region (a throw inside it would terminate).
int bi(int64_t v) { return static_cast<int>(v); }
void fits_blas(const char* kernel, int64_t T, int64_t C) { blas_int(std::max(T, 3 * C), kernel); }

// The geometry of one call: sizes and the head's views.
struct Heads {
  int64_t B, T, C, H, D;
  bool causal;
  int64_t block() const { return causal ? kRowBlock : T; }
  // Keys seen by the rows of the block starting at t0 (all keys without a causal mask).
  int64_t keys_of_block(int64_t t0) const { return causal ? std::min(T, t0 + block()) : T; }
};

// p[0, limit) = softmax of p[0, limit) over the kept keys (keep null: all kept), scaled
// in place; p[limit, T) = 0. A row with no kept key becomes zeros. Returns the row's
// log-sum-exp, +inf for a row with no kept key.
template <class F>
F softmax_row(F* p, int64_t limit, int64_t T, const int32_t* keep) {
  F m = -std::numeric_limits<F>::infinity();
  if (keep == nullptr) {
#pragma omp simd reduction(max : m)
    for (int64_t s = 0; s < limit; ++s) m = std::max(m, p[s]);
  } else {
#pragma omp simd reduction(max : m)
    for (int64_t s = 0; s < limit; ++s)
      m = std::max(m, keep[s] != 0 ? p[s] : -std::numeric_limits<F>::infinity());
  }
  if (m == -std::numeric_limits<F>::infinity()) limit = 0;   // every key masked
  F sum = 0;
  if (keep == nullptr) {
#pragma omp simd reduction(+ : sum)
    for (int64_t s = 0; s < limit; ++s) {
      const F e = exp_approx(p[s] - m);
      p[s] = e;
      sum += e;
    }
  } else {
#pragma omp simd reduction(+ : sum)
    for (int64_t s = 0; s < limit; ++s) {
      const F e = keep[s] != 0 ? exp_approx(p[s] - m) : F(0);
      p[s] = e;
      sum += e;
    }
  }
  const F inv = limit > 0 ? F(1) / sum : F(0);
  for (int64_t s = 0; s < limit; ++s) p[s] *= inv;
  for (int64_t s = limit; s < T; ++s) p[s] = F(0);
  return limit > 0 ? m + std::log(sum) : std::numeric_limits<F>::infinity();
}

// One head's forward. q, k, v (T, D) with ld 3C; o (T, D) with ld C; lse (T); p (T, T).
template <class F>
void head_forward(F* o, F* lse, F* p, const F* q, const F* k, const F* v, const int32_t* keep,
                  const Heads& g) {
  const int64_t T = g.T, ld = 3 * g.C;
  const F scale = F(1) / std::sqrt(F(g.D));
  for (int64_t t0 = 0; t0 < T; t0 += g.block()) {   // S = s Q Kᵀ, row block by row block
    const int64_t rows_b = std::min(g.block(), T - t0), keys = g.keys_of_block(t0);
    gemm(false, true, bi(rows_b), bi(keys), bi(g.D), scale,
         q + t0 * ld, bi(ld), k, bi(ld), F(0), p + t0 * T, bi(T));
  }
  for (int64_t t = 0; t < T; ++t) lse[t] = softmax_row(p + t * T, g.causal ? t + 1 : T, T, keep);
  for (int64_t t0 = 0; t0 < T; t0 += g.block()) {   // O = P V
    const int64_t rows_b = std::min(g.block(), T - t0), keys = g.keys_of_block(t0);
    gemm(false, false, bi(rows_b), bi(g.D), bi(keys), F(1),
         p + t0 * T, bi(T), v, bi(ld), F(0), o + t0 * g.C,
         bi(g.C));
  }
}

// dX (T, D; ld ldx) = Aᵀ Y for A (T, T) with ld T and Y (T, D; ld ldy), skipping the
// zero upper triangle of A when causal: rows [s0, s1) of dX need rows [s0, T) of A.
template <class F>
void gemm_transposed_blocks(F* dx, int64_t ldx, const F* a, const F* y, int64_t ldy,
                            const Heads& g) {
  const int64_t T = g.T;
  for (int64_t s0 = 0; s0 < T; s0 += g.block()) {
    const int64_t cols = std::min(g.block(), T - s0), first = g.causal ? s0 : 0;
    gemm(true, false, bi(cols), bi(g.D), bi(T - first), F(1),
         a + first * T + s0, bi(T), y + first * ldy, bi(ldy), F(0),
         dx + s0 * ldx, bi(ldx));
  }
}

// One head's backward. dq, dk, dv (T, D) with ld 3C; d_o (T, D) with ld C; p, dp (T, T).
template <class F>
void head_backward(F* dq, F* dk, F* dv, F* dp, const F* d_o, const F* q, const F* k,
                   const F* v, const F* p, const Heads& g) {
  const int64_t T = g.T, ld = 3 * g.C;
  const F scale = F(1) / std::sqrt(F(g.D));
  for (int64_t t0 = 0; t0 < T; t0 += g.block()) {   // dP = dO Vᵀ
    const int64_t rows_b = std::min(g.block(), T - t0), keys = g.keys_of_block(t0);
    gemm(false, true, bi(rows_b), bi(keys), bi(g.D), F(1),
         d_o + t0 * g.C, bi(g.C), v, bi(ld), F(0), dp + t0 * T,
         bi(T));
  }
  gemm_transposed_blocks(dv, ld, p, d_o, g.C, g);   // dV = Pᵀ dO
  for (int64_t t = 0; t < T; ++t) {                 // dS = P ⊙ (dP − rowsum(dP ⊙ P)) · s
    const int64_t limit = g.causal ? t + 1 : T, end = g.keys_of_block(t - t % g.block());
    const F* pr = p + t * T;
    F* dr = dp + t * T;
    F dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int64_t s = 0; s < limit; ++s) dot += dr[s] * pr[s];
    for (int64_t s = 0; s < limit; ++s) dr[s] = pr[s] * (dr[s] - dot) * scale;
    for (int64_t s = limit; s < end; ++s) dr[s] = F(0);
  }
  for (int64_t t0 = 0; t0 < T; t0 += g.block()) {   // dQ = dS K
    const int64_t rows_b = std::min(g.block(), T - t0), keys = g.keys_of_block(t0);
    gemm(false, false, bi(rows_b), bi(g.D), bi(keys), F(1),
         dp + t0 * T, bi(T), k, bi(ld), F(0), dq + t0 * ld,
         bi(ld));
  }
  gemm_transposed_blocks(dk, ld, dp, q, ld, g);     // dK = dSᵀ Q
}

template <class F>
F dot_d(const F* a, const F* b, int64_t D) {
  F sum = 0;
  for (int64_t d = 0; d < D; ++d) sum += a[d] * b[d];
  return sum;
}

// One head's forward without P (Note [Attention from lse]). q, k, v (T, D) with ld 3C;
// o (T, D) with ld C; lse (T).
template <class F>
void head_forward_lse(F* o, F* lse, const F* q, const F* k, const F* v, const int32_t* keep,
                      const Heads& g) {
  const int64_t T = g.T, D = g.D, ld = 3 * g.C;
  const F scale = F(1) / std::sqrt(F(D));
  for (int64_t t = 0; t < T; ++t) {
    F* acc = o + t * g.C;
    const F* qt = q + t * ld;
    std::fill(acc, acc + D, F(0));
    F m = -std::numeric_limits<F>::infinity(), l = 0;
    for (int64_t s = 0; s < (g.causal ? t + 1 : T); ++s) {
      if (keep != nullptr && keep[s] == 0) continue;
      const F score = dot_d(qt, k + s * ld, D) * scale;
      if (score > m) {   // a new max: rescale what was summed (e^−inf = 0 at the first key)
        const F correction = std::exp(m - score);
        l *= correction;
        for (int64_t d = 0; d < D; ++d) acc[d] *= correction;
        m = score;
      }
      const F p = std::exp(score - m);
      l += p;
      const F* vs = v + s * ld;
      for (int64_t d = 0; d < D; ++d) acc[d] += p * vs[d];
    }
    if (l > 0) {
      for (int64_t d = 0; d < D; ++d) acc[d] /= l;
      lse[t] = m + std::log(l);
    } else {
      lse[t] = std::numeric_limits<F>::infinity();   // no visible key: acc stays zeros
    }
  }
}

// One head's backward without P (Note [Attention from lse]). dq, dk, dv (T, D) with ld 3C
// written; rowdot (T) scratch; d_o, o (T, D) with ld C; lse (T); q, k, v (T, D) with ld 3C.
template <class F>
void head_backward_lse(F* dq, F* dk, F* dv, F* rowdot, const F* d_o, const F* o, const F* lse,
                       const F* q, const F* k, const F* v, const int32_t* keep, const Heads& g) {
  const int64_t T = g.T, D = g.D, ld = 3 * g.C;
  const F scale = F(1) / std::sqrt(F(D));
  for (int64_t t = 0; t < T; ++t) {
    for (F* x : {dq, dk, dv}) std::fill(x + t * ld, x + t * ld + D, F(0));
    rowdot[t] = dot_d(d_o + t * g.C, o + t * g.C, D);
  }
  for (int64_t t = 0; t < T; ++t) {
    const F* qt = q + t * ld;
    const F* do_t = d_o + t * g.C;   // dOₜ
    F* dqt = dq + t * ld;
    for (int64_t s = 0; s < (g.causal ? t + 1 : T); ++s) {
      if (keep != nullptr && keep[s] == 0) continue;
      const F* ks = k + s * ld;
      const F* vs = v + s * ld;
      const F p = std::exp(dot_d(qt, ks, D) * scale - lse[t]);
      const F ds = p * (dot_d(do_t, vs, D) - rowdot[t]) * scale;
      F* dks = dk + s * ld;
      F* dvs = dv + s * ld;
      for (int64_t d = 0; d < D; ++d) {
        dvs[d] += p * do_t[d];
        dks[d] += ds * qt[d];
        dqt[d] += ds * ks[d];
      }
    }
  }
}

template <class F>
void attention_forward_t(Tensor out_t, Tensor lse_t, Tensor att_t, Tensor qkv_t, Tensor mask_t,
                         int n_head, bool causal) {
  const int64_t B = qkv_t.shape()[0], T = qkv_t.shape()[1], C = qkv_t.shape()[2] / 3;
  const Heads g{B, T, C, n_head, C / n_head, causal};
  F* out = ptr<F>(out_t);                          // (B, T, C)
  F* lse = ptr<F>(lse_t);                          // (B, H, T)
  F* att = ptr<F>(att_t);                          // (B, H, T, T) or null
  const F* qkv = ptr<F>(qkv_t);                    // (B, T, 3C)
  const int32_t* key_mask = ptr<int32_t>(mask_t);  // (B, T) or null
  fits_blas("attention_forward", T, C);
  SerialBlas serial_blas;                          // Note [Attention threading]
#pragma omp parallel for schedule(dynamic, 1) if (B * g.H * T * T >= kParallelMin)
  for (int64_t bh = 0; bh < B * g.H; ++bh) {
    const int64_t b = bh / g.H, h = bh % g.H;
    const F* q = qkv + b * T * 3 * C + h * g.D;
    const int32_t* keep = key_mask != nullptr ? key_mask + b * T : nullptr;
    if (att != nullptr) {
      head_forward(out + b * T * C + h * g.D, lse + bh * T, att + bh * T * T, q, q + C, q + 2 * C,
                   keep, g);
    } else {
      head_forward_lse(out + b * T * C + h * g.D, lse + bh * T, q, q + C, q + 2 * C, keep, g);
    }
  }
}

template <class F>
void attention_backward_t(Tensor dqkv_t, Tensor scratch_t, Tensor dout_t, Tensor qkv_t,
                          Tensor out_t, Tensor lse_t, Tensor att_t, Tensor mask_t, int n_head,
                          bool causal) {
  const int64_t B = qkv_t.shape()[0], T = qkv_t.shape()[1], C = qkv_t.shape()[2] / 3;
  const Heads g{B, T, C, n_head, C / n_head, causal};
  F* dqkv = ptr<F>(dqkv_t);                        // (B, T, 3C) written
  F* scratch = ptr<F>(scratch_t);                  // (B, H, T, T) with att, else (B, H, T)
  const F* dout = ptr<F>(dout_t);                  // (B, T, C)
  const F* qkv = ptr<F>(qkv_t);                    // (B, T, 3C)
  const F* out = ptr<F>(out_t);                    // (B, T, C)
  const F* lse = ptr<F>(lse_t);                    // (B, H, T)
  const F* att = ptr<F>(att_t);                    // (B, H, T, T) or null
  const int32_t* key_mask = ptr<int32_t>(mask_t);  // (B, T) or null
  fits_blas("attention_backward", T, C);
  SerialBlas serial_blas;                          // Note [Attention threading]
#pragma omp parallel for schedule(dynamic, 1) if (B * g.H * T * T >= kParallelMin)
  for (int64_t bh = 0; bh < B * g.H; ++bh) {
    const int64_t b = bh / g.H, h = bh % g.H, off = b * T * 3 * C + h * g.D;
    const int64_t off_o = b * T * C + h * g.D;
    if (att != nullptr) {
      head_backward(dqkv + off, dqkv + off + C, dqkv + off + 2 * C, scratch + bh * T * T,
                    dout + off_o, qkv + off, qkv + off + C, qkv + off + 2 * C, att + bh * T * T,
                    g);
    } else {
      head_backward_lse(dqkv + off, dqkv + off + C, dqkv + off + 2 * C, scratch + bh * T,
                        dout + off_o, out + off_o, lse + bh * T, qkv + off, qkv + off + C,
                        qkv + off + 2 * C, key_mask != nullptr ? key_mask + b * T : nullptr, g);
    }
  }
}

}  // namespace

void attention_forward(Tensor out, Tensor lse, Tensor att, Tensor qkv, Tensor key_mask,
                       int n_head, bool causal) {
  if (is_f64(out))
    return attention_forward_t<double>(out, lse, att, qkv, key_mask, n_head, causal);
  attention_forward_t<float>(out, lse, att, qkv, key_mask, n_head, causal);
}

void attention_backward(Tensor dqkv, Tensor scratch, Tensor dout, Tensor qkv, Tensor out,
                        Tensor lse, Tensor att, Tensor key_mask, int n_head, bool causal) {
  if (is_f64(dqkv))
    return attention_backward_t<double>(dqkv, scratch, dout, qkv, out, lse, att, key_mask, n_head,
                                        causal);
  attention_backward_t<float>(dqkv, scratch, dout, qkv, out, lse, att, key_mask, n_head, causal);
}

}  // namespace loom::cpu
