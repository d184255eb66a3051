// CUDA multi-head self-attention (core/kernels.h), f32. qkv (B, T, 3C) is read in place:
// head h of q, k, v is columns [hD, (h+1)D) of each C-block of a row (ld 3C), so no
// permute copies; s = 1/√D.
//
// Note [Fused attention forward]
// One block per (tile of kQueries queries, head, sequence), one warp per query. Keys are
// walked in tiles of 32 staged in shared memory (K padded to an odd row stride, so that
// the 32 lanes - one key each - read different banks), FlashAttention-style: each warp
// keeps its query's running max m, running sum l and accumulator o (D values, D/32 per
// lane) and rescales them by e^(m_old − m_new) when a tile raises the max (the online
// softmax), so the scores of a whole row never need to be held at once. Masked keys - a
// causal mask (key s > query t; whole tiles past the block's last query are not even
// loaded) or key_mask = 0 - get score −inf, i.e. probability 0. A query whose keys are
// all masked keeps l = 0 and gets a row of zeros, never 0/0 (as the CPU reference).
// Then out = o / l.
// The contract also asks for att (B, H, T, T), the probabilities that attention_backward
// reads, so a second walk over the same key tiles recomputes each score (same operands,
// same order: bitwise the scores of the first walk) and writes e^(score − m) / l, zeros
// where masked: the forward's QKᵀ work is done twice, and att costs B·H·T² stores.
// Limits: D = C / n_head <= kMaxHeadDim (128; GPT-2 and BERT use 64), checked with a
// loom::Error; shared memory (32 (D+1) + 32 D + kQueries D) floats <= 35 KiB at D = 128.
//
// Note [An lse-only attention]
// Writing att is what keeps model code unchanged; it is also the expensive part at long
// sequences: at GPT-2 124M (T = 1024, H = 12, B = 16) att is 805 MB per layer, 9.7 GB for
// 12 layers, written once and read twice. A later variant would save only the row
// log-sum-exp lse = m + log l (B, H, T) and let the backward recompute P tile by tile
// (FlashAttention-2's backward, with rowsum(dO ⊙ O) computed first). What would change:
// kernels.h's attention_forward writes lse (B, H, T) instead of att (B, H, T, T);
// attention_backward reads lse and out instead of att, and its datt scratch shrinks to
// (B, H, T); the CPU reference gains the same signature (it can still form P per head
// from lse); the transformer models size those activations by T instead of T², and
// nothing else moves.
//
// Note [Attention backward on cuBLAS]
// Per sequence b, with P = att[b] and the heads as a strided batch (stride D through the
// qkv/out columns, T² through att), as the CPU reference does it:
//   dP = dO Vᵀ                          (cuBLAS, into datt: the scratch)
//   dS = P ⊙ (dP − rowsum(dP ⊙ P)) · s  (a warp per row, in place)
//   dV = Pᵀ dO, dQ = dS K, dK = dSᵀ Q   (cuBLAS, written straight into dqkv, ld 3C)
// Masked entries have P = 0, hence dS = 0: the full T x T products need no masks. The
// b loop issues 4B cuBLAS calls; the heads cannot join one batch across b because the
// offset of (b, h) is b·3TC + h·D, not a multiple of one stride. TF32 follows
// set_cuda_tf32 (core/kernels.h) like the linear layers.
#include "core/cuda/device_math.cuh"
#include "core/cuda/kernel_support.h"
#include "core/kernels_cuda.h"

#include <cmath>
#include <string>

namespace loom::cuda {
namespace {
using namespace detail;

constexpr int kQueries = 8;                   // queries (warps) per block
constexpr int kKeyTile = kWarp;               // keys per shared-memory tile: one per lane
constexpr int kMaxHeadDim = 128;
constexpr int kDimsPerLane = kMaxHeadDim / kWarp;

struct AttentionGeometry {
  int64_t T, C, H, D;
  int64_t ld_k;       // the K tile's row stride in shared memory: odd
  float scale;
  bool causal;
};

// The staged tiles: K (kKeyTile, ld_k), V (kKeyTile, D), Q (kQueries, D).
__device__ __forceinline__ void load_key_tile(float* sK, float* sV, const float* qkv_b,
                                              int64_t s0, int64_t h, const AttentionGeometry& g) {
  const int64_t items = kKeyTile * g.D;
  for (int64_t i = threadIdx.x; i < items; i += blockDim.x) {
    const int64_t j = i / g.D, d = i % g.D, s = s0 + j;
    if (s >= g.T) continue;   // past the sequence: never read (the score is −inf)
    const float* row = qkv_b + s * 3 * g.C + h * g.D;
    sK[j * g.ld_k + d] = row[g.C + d];
    sV[j * g.D + d] = row[2 * g.C + d];
  }
}

// The score of this lane's key s0 + lane for query t (row q in shared memory), −inf when
// masked or past T.
__device__ __forceinline__ float key_score(const float* q, const float* sK, int64_t s0,
                                           int64_t t, const int32_t* keep,
                                           const AttentionGeometry& g) {
  const int lane = threadIdx.x % kWarp;
  const int64_t s = s0 + lane;
  if (s >= g.T || (g.causal && s > t) || (keep != nullptr && keep[s] == 0)) return -INFINITY;
  const float* k = sK + lane * g.ld_k;
  float dot = 0.0f;
  for (int64_t d = 0; d < g.D; ++d) dot += q[d] * k[d];
  return dot * g.scale;
}

// grid (ceil(T / kQueries), H, B), kQueries warps per block; dynamic shared memory holds
// the tiles. Note [Fused attention forward].
__global__ void attention_forward_tiled(float* out, float* att, const float* qkv,
                                        const int32_t* key_mask, AttentionGeometry g) {
  extern __shared__ float shared[];
  float* sK = shared;                           // (kKeyTile, ld_k)
  float* sV = sK + kKeyTile * g.ld_k;           // (kKeyTile, D)
  float* sQ = sV + kKeyTile * g.D;              // (kQueries, D)
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int64_t b = blockIdx.z, h = blockIdx.y, t0 = int64_t(blockIdx.x) * kQueries;
  const int64_t t = t0 + warp;
  const bool query = t < g.T;
  const float* qkv_b = qkv + b * g.T * 3 * g.C;
  const int32_t* keep = key_mask != nullptr ? key_mask + b * g.T : nullptr;
  float* q = sQ + warp * g.D;
  if (query)
    for (int64_t d = lane; d < g.D; d += kWarp) q[d] = qkv_b[t * 3 * g.C + h * g.D + d];
  // Keys any query of this block may see.
  const int64_t last_t = t0 + kQueries < g.T ? t0 + kQueries : g.T;
  const int64_t key_end = g.causal ? last_t : g.T;

  float m = -INFINITY, l = 0.0f;
  float acc[kDimsPerLane] = {};
  for (int64_t s0 = 0; s0 < key_end; s0 += kKeyTile) {
    __syncthreads();   // the previous tile (and q) are no longer being read / are written
    load_key_tile(sK, sV, qkv_b, s0, h, g);
    __syncthreads();
    if (!query) continue;
    const float score = key_score(q, sK, s0, t, keep, g);
    const float tile_max = warp_max(score);
    if (tile_max == -INFINITY) continue;   // every key of the tile masked for this query
    const float m_new = fmaxf(m, tile_max);
    const float correction = expf(m - m_new);   // 0 while m is still −inf
    const float p = score == -INFINITY ? 0.0f : expf(score - m_new);
    l = l * correction + warp_sum(p);
    for (int i = 0; i < kDimsPerLane; ++i) acc[i] *= correction;
    const int keys = g.T - s0 < kKeyTile ? int(g.T - s0) : kKeyTile;
    for (int j = 0; j < keys; ++j) {
      const float pj = __shfl_sync(kFullMask, p, j);
      if (pj == 0.0f) continue;   // the same on every lane: no divergence
      const float* v = sV + j * g.D;
      for (int i = 0; i < kDimsPerLane; ++i) {
        const int64_t d = lane + int64_t(i) * kWarp;
        if (d < g.D) acc[i] += pj * v[d];
      }
    }
    m = m_new;
  }
  const float inv_l = l > 0.0f ? 1.0f / l : 0.0f;   // all keys masked: zeros
  if (query) {
    float* o = out + (b * g.T + t) * g.C + h * g.D;
    for (int i = 0; i < kDimsPerLane; ++i) {
      const int64_t d = lane + int64_t(i) * kWarp;
      if (d < g.D) o[d] = acc[i] * inv_l;
    }
  }

  // The probabilities, recomputed tile by tile (Note [Fused attention forward]).
  float* a = att + ((b * g.H + h) * g.T + (query ? t : 0)) * g.T;
  for (int64_t s0 = 0; s0 < g.T; s0 += kKeyTile) {
    const int64_t s = s0 + lane;
    if (s0 >= key_end) {   // past every query of the block: zeros, no tile needed
      if (query && s < g.T) a[s] = 0.0f;
      continue;
    }
    __syncthreads();
    load_key_tile(sK, sV, qkv_b, s0, h, g);
    __syncthreads();
    if (!query) continue;
    const float score = key_score(q, sK, s0, t, keep, g);
    if (s < g.T) a[s] = score == -INFINITY || l == 0.0f ? 0.0f : expf(score - m) * inv_l;
  }
}

// dS = P ⊙ (dP − rowsum(dP ⊙ P)) · s in place of dP, a warp per row of (B·H·T) rows.
__global__ void softmax_backward_rows(float* datt, const float* att, int64_t rows, int64_t T,
                                      float scale) {
  const int64_t r = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (r >= rows) return;
  float* dp = datt + r * T;
  const float* p = att + r * T;
  float dot = 0.0f;
  for (int64_t s = lane; s < T; s += kWarp) dot += dp[s] * p[s];
  dot = warp_sum(dot);
  for (int64_t s = lane; s < T; s += kWarp) dp[s] = p[s] * (dp[s] - dot) * scale;
}

AttentionGeometry geometry(const Tensor& qkv, int n_head, bool causal) {
  AttentionGeometry g;
  g.T = qkv.shape()[1];
  g.C = qkv.shape()[2] / 3;
  g.H = n_head;
  g.D = g.C / n_head;
  g.ld_k = g.D % 2 == 0 ? g.D + 1 : g.D;
  g.scale = 1.0f / std::sqrt(float(g.D));
  g.causal = causal;
  return g;
}

}  // namespace

void attention_forward(Tensor out, Tensor att, Tensor qkv, Tensor key_mask, int n_head,
                       bool causal) {
  KernelCall call("attention_forward",
                  {{"out", out}, {"att", att}, {"qkv", qkv}, {"key_mask", key_mask}});
  const AttentionGeometry g = geometry(qkv, n_head, causal);
  const int64_t B = qkv.shape()[0];
  if (g.D > kMaxHeadDim)
    throw Error(std::string("attention_forward: the head size D = C / n_head = ") +
                std::to_string(g.D) + " exceeds the CUDA kernel's " +
                std::to_string(kMaxHeadDim) + "; use more heads or keep the model on the CPU");
  if (B == 0 || g.T == 0) return;
  if (B > 65535 || g.H > 65535)
    throw Error("attention_forward: B = " + std::to_string(B) + " and n_head = " +
                std::to_string(g.H) + " must be at most 65535 on CUDA (grid limits)");
  const size_t smem = sizeof(float) * size_t(kKeyTile * g.ld_k + kKeyTile * g.D + kQueries * g.D);
  const dim3 grid(unsigned((g.T + kQueries - 1) / kQueries), unsigned(g.H), unsigned(B));
  attention_forward_tiled<<<grid, kQueries * kWarp, smem, call.stream()>>>(
      out.f32(), att.f32(), qkv.f32(), present(key_mask) ? key_mask.i32() : nullptr, g);
  LOOM_CUDA_CHECK_LAUNCH("attention_forward_tiled");
}

void attention_backward(Tensor dqkv, Tensor datt, Tensor dout, Tensor qkv, Tensor att,
                        int n_head, bool causal) {
  KernelCall call("attention_backward", {{"dqkv", dqkv}, {"datt", datt}, {"dout", dout},
                                         {"qkv", qkv}, {"att", att}});
  const AttentionGeometry g = geometry(qkv, n_head, causal);
  const int64_t B = qkv.shape()[0], T = g.T, C = g.C, D = g.D, TT = T * T;
  if (B == 0 || T == 0) return;
  float* dqkv_p = dqkv.f32();
  float* datt_p = datt.f32();
  const float* dout_p = dout.f32();
  const float* qkv_p = qkv.f32();
  const float* att_p = att.f32();
  for (int64_t b = 0; b < B; ++b) {   // dP = dO Vᵀ (Note [Attention backward on cuBLAS])
    Gemm dp;
    dp.tb = true, dp.m = T, dp.n = T, dp.k = D, dp.batch = g.H;
    dp.a = dout_p + b * T * C, dp.lda = C, dp.stride_a = D;
    dp.b = qkv_p + b * T * 3 * C + 2 * C, dp.ldb = 3 * C, dp.stride_b = D;
    dp.c = datt_p + b * g.H * TT, dp.ldc = T, dp.stride_c = TT;
    gemm(call, dp);
  }
  constexpr int kThreads = 256;
  const int64_t rows = B * g.H * T;
  softmax_backward_rows<<<unsigned((rows * kWarp + kThreads - 1) / kThreads), kThreads, 0,
                          call.stream()>>>(datt_p, att_p, rows, T, g.scale);
  LOOM_CUDA_CHECK_LAUNCH("softmax_backward_rows");
  for (int64_t b = 0; b < B; ++b) {
    const float* qkv_b = qkv_p + b * T * 3 * C;
    float* dqkv_b = dqkv_p + b * T * 3 * C;
    const float* p_b = att_p + b * g.H * TT;
    const float* ds_b = datt_p + b * g.H * TT;
    Gemm dv;   // dV = Pᵀ dO
    dv.ta = true, dv.m = T, dv.n = D, dv.k = T, dv.batch = g.H;
    dv.a = p_b, dv.lda = T, dv.stride_a = TT;
    dv.b = dout_p + b * T * C, dv.ldb = C, dv.stride_b = D;
    dv.c = dqkv_b + 2 * C, dv.ldc = 3 * C, dv.stride_c = D;
    gemm(call, dv);
    Gemm dq;   // dQ = dS K
    dq.m = T, dq.n = D, dq.k = T, dq.batch = g.H;
    dq.a = ds_b, dq.lda = T, dq.stride_a = TT;
    dq.b = qkv_b + C, dq.ldb = 3 * C, dq.stride_b = D;
    dq.c = dqkv_b, dq.ldc = 3 * C, dq.stride_c = D;
    gemm(call, dq);
    Gemm dk;   // dK = dSᵀ Q
    dk.ta = true, dk.m = T, dk.n = D, dk.k = T, dk.batch = g.H;
    dk.a = ds_b, dk.lda = T, dk.stride_a = TT;
    dk.b = qkv_b, dk.ldb = 3 * C, dk.stride_b = D;
    dk.c = dqkv_b + C, dk.ldc = 3 * C, dk.stride_c = D;
    gemm(call, dk);
  }
}

}  // namespace loom::cuda
