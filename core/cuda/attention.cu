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
// Then out = o / l and lse = m + log l (+inf when l = 0: Note [Saved probabilities or
// lse] in core/kernels.h).
// Only when the caller passes att (B, H, T, T) - the CPU models do, CUDA models do not
// (attention_saves_probabilities) - a second walk over the same key tiles recomputes
// each score (same operands, same order: bitwise the scores of the first walk) and writes
// e^(score − m) / l, zeros where masked: QKᵀ twice and B·H·T² stores, for a caller that
// wants the probabilities or the cuBLAS backward (Note [Attention backward on cuBLAS]).
// Limits: D = C / n_head <= kMaxHeadDim (128; GPT-2 and BERT use 64), checked with a
// loom::Error; shared memory (32 (D+1) + 32 D + kQueries D) floats <= 35 KiB at D = 128.
//
// Note [Attention backward from lse]
// Without att (the CUDA models' path), FlashAttention-2's backward: P is recomputed from
// q, k and lse, tile by tile, and never stored. Three kernels:
//   1. attention_row_dot: Dₜ = rowsum(dOₜ ⊙ Oₜ) into the (B, H, T) scratch, a warp per
//      row. (Dₜ = Σ_s Pₜₛ dPₜₛ, the softmax backward's row term, since Oₜ = Σ_s Pₜₛ vₛ.)
//   2. attention_backward_kv: a block per (tile of kKeys keys, head, sequence), a warp per
//      key s holding dKₛ and dVₛ (D/32 per lane). It walks the query tiles (32 queries:
//      Q, dO, lse and D staged in shared memory, Q and dO at an odd row stride), lane j
//      taking query t = t0 + j:
//        P = e^(s qₜ·kₛ − lseₜ), dP = dOₜ·vₛ, dS = P (dP − Dₜ) s
//      then, for each j, broadcasts P and dS of lane j and adds dVₛ += P dOₜ,
//      dKₛ += dS qₜ. Causal: the queries start at the block's first key. A masked key
//      (key_mask 0) gets zero gradients; a query that may not see the key (causal) gets
//      P = 0.
//   3. attention_backward_q: a block per (tile of kQueries queries, head, sequence), a
//      warp per query t holding dQₜ; it walks the key tiles as the forward does (K and V
//      staged at an odd stride), lane j taking key s = s0 + j, recomputes dS as above and
//      adds dQₜ += dS kₛ over the tile's keys.
// Each gradient row is owned by one warp: no atomics, and the sums run in a fixed order
// (deterministic). Both walk every (query, key) pair: QKᵀ and dO Vᵀ are computed twice in
// backward (FA2 trades that for the T² memory). The three write dqkv (B, T, 3C) in place,
// at the q, k and v column blocks of each head. A row with lse = +inf (no visible key)
// has P = 0 everywhere: zero gradients with no special case. fp32 CUDA-core FMAs, not
// tensor cores: the simplest correct form, not yet tuned (issue 19).
// Shared memory at D = 128: (2·32 (D+1) + 2·kKeys D + 64) floats = 40.5 KiB (kernel 2),
// (2·32 (D+1) + 2·kQueries D) floats = 40.3 KiB (kernel 3), under the default 48 KiB.
//
// Note [Attention backward on cuBLAS]
// With att given, per sequence b, with P = att[b] and the heads as a strided batch
// (stride D through the qkv/out columns, T² through att), as the CPU reference does it:
//   dP = dO Vᵀ                          (cuBLAS, into the (B, H, T, T) scratch)
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
constexpr int kKeys = 8;                      // keys (warps) per block of attention_backward_kv
constexpr int kKeyTile = kWarp;               // keys per shared-memory tile: one per lane
constexpr int kQueryTile = kWarp;             // queries per tile of attention_backward_kv
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
// the tiles. Note [Fused attention forward]. att null: not written.
__global__ void attention_forward_tiled(float* out, float* lse, float* att, const float* qkv,
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
    if (lane == 0) lse[(b * g.H + h) * g.T + t] = l > 0.0f ? m + logf(l) : INFINITY;
  }
  if (att == nullptr) return;   // the same for the whole block: no __syncthreads skipped

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

// ---- backward from lse (Note [Attention backward from lse]) --------------------------

// dst[j, d] = the row r0 + j of src (row stride src_ld), columns [0, D), for the rows
// j < rows with r0 + j < T; dst's row stride ld. The whole block takes part.
__device__ __forceinline__ void stage_rows(float* dst, int64_t ld, const float* src,
                                           int64_t src_ld, int64_t r0, int rows,
                                           const AttentionGeometry& g) {
  const int64_t items = rows * g.D;
  for (int64_t i = threadIdx.x; i < items; i += blockDim.x) {
    const int64_t j = i / g.D, d = i % g.D;
    if (r0 + j < g.T) dst[j * ld + d] = src[(r0 + j) * src_ld + d];
  }
}

__device__ __forceinline__ float dot_d(const float* a, const float* b, int64_t D) {
  float dot = 0.0f;
  for (int64_t d = 0; d < D; ++d) dot += a[d] * b[d];
  return dot;
}

// rowdot[r] = Σ_d dout[b, t, hD + d] · out[b, t, hD + d] for the (B·H·T) rows r = (b·H + h)·T
// + t, a warp per row.
__global__ void attention_row_dot(float* rowdot, const float* dout, const float* out,
                                  int64_t rows, AttentionGeometry g) {
  const int64_t r = (int64_t(blockIdx.x) * blockDim.x + threadIdx.x) / kWarp;
  const int lane = threadIdx.x % kWarp;
  if (r >= rows) return;   // the same for the whole warp
  const int64_t t = r % g.T, bh = r / g.T, h = bh % g.H, b = bh / g.H;
  const int64_t off = (b * g.T + t) * g.C + h * g.D;
  float dot = 0.0f;
  for (int64_t d = lane; d < g.D; d += kWarp) dot += dout[off + d] * out[off + d];
  dot = warp_sum(dot);
  if (lane == 0) rowdot[r] = dot;
}

// grid (ceil(T / kKeys), H, B), kKeys warps per block, a warp per key: dK and dV.
__global__ void attention_backward_kv(float* dqkv, const float* dout, const float* qkv,
                                      const float* lse, const float* rowdot,
                                      const int32_t* key_mask, AttentionGeometry g) {
  extern __shared__ float shared[];
  const int64_t ld = g.ld_k;
  float* sQ = shared;                            // (kQueryTile, ld)
  float* sdO = sQ + kQueryTile * ld;             // (kQueryTile, ld)
  float* sLse = sdO + kQueryTile * ld;           // (kQueryTile)
  float* sRow = sLse + kQueryTile;               // (kQueryTile)
  float* sK = sRow + kQueryTile;                 // (kKeys, D)
  float* sV = sK + kKeys * g.D;                  // (kKeys, D)
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int64_t b = blockIdx.z, h = blockIdx.y, s_first = int64_t(blockIdx.x) * kKeys;
  const int64_t s = s_first + warp;
  const int64_t bh = b * g.H + h;
  const float* qkv_b = qkv + b * g.T * 3 * g.C;
  const float* dout_b = dout + b * g.T * g.C;
  const bool key = s < g.T && (key_mask == nullptr || key_mask[b * g.T + s] != 0);
  stage_rows(sK, g.D, qkv_b + g.C + h * g.D, 3 * g.C, s_first, kKeys, g);
  stage_rows(sV, g.D, qkv_b + 2 * g.C + h * g.D, 3 * g.C, s_first, kKeys, g);
  const float* k = sK + warp * g.D;
  const float* v = sV + warp * g.D;

  float dk[kDimsPerLane] = {}, dv[kDimsPerLane] = {};
  for (int64_t t0 = g.causal ? s_first : 0; t0 < g.T; t0 += kQueryTile) {
    __syncthreads();   // the previous tile is no longer being read (and sK, sV are staged)
    stage_rows(sQ, ld, qkv_b + h * g.D, 3 * g.C, t0, kQueryTile, g);
    stage_rows(sdO, ld, dout_b + h * g.D, g.C, t0, kQueryTile, g);
    if (threadIdx.x < kQueryTile) {
      const int64_t t = t0 + threadIdx.x;
      sLse[threadIdx.x] = t < g.T ? lse[bh * g.T + t] : INFINITY;
      sRow[threadIdx.x] = t < g.T ? rowdot[bh * g.T + t] : 0.0f;
    }
    __syncthreads();
    if (!key) continue;
    const int64_t t = t0 + lane;
    float p = 0.0f, ds = 0.0f;
    if (t < g.T && !(g.causal && s > t)) {
      p = expf(dot_d(sQ + lane * ld, k, g.D) * g.scale - sLse[lane]);
      ds = p * (dot_d(sdO + lane * ld, v, g.D) - sRow[lane]) * g.scale;
    }
    const int queries = g.T - t0 < kQueryTile ? int(g.T - t0) : kQueryTile;
    for (int j = 0; j < queries; ++j) {
      const float pj = __shfl_sync(kFullMask, p, j), dsj = __shfl_sync(kFullMask, ds, j);
      if (pj == 0.0f && dsj == 0.0f) continue;   // the same on every lane
      const float* q = sQ + j * ld;
      const float* d_o = sdO + j * ld;
      for (int i = 0; i < kDimsPerLane; ++i) {
        const int64_t d = lane + int64_t(i) * kWarp;
        if (d < g.D) {
          dv[i] += pj * d_o[d];
          dk[i] += dsj * q[d];
        }
      }
    }
  }
  if (s >= g.T) return;
  float* row = dqkv + (b * g.T + s) * 3 * g.C + h * g.D;
  for (int i = 0; i < kDimsPerLane; ++i) {   // a masked key: zeros
    const int64_t d = lane + int64_t(i) * kWarp;
    if (d < g.D) {
      row[g.C + d] = dk[i];
      row[2 * g.C + d] = dv[i];
    }
  }
}

// grid (ceil(T / kQueries), H, B), kQueries warps per block, a warp per query: dQ.
__global__ void attention_backward_q(float* dqkv, const float* dout, const float* qkv,
                                     const float* lse, const float* rowdot,
                                     const int32_t* key_mask, AttentionGeometry g) {
  extern __shared__ float shared[];
  const int64_t ld = g.ld_k;
  float* sK = shared;                            // (kKeyTile, ld)
  float* sV = sK + kKeyTile * ld;                // (kKeyTile, ld)
  float* sQ = sV + kKeyTile * ld;                // (kQueries, D)
  float* sdO = sQ + kQueries * g.D;              // (kQueries, D)
  const int warp = threadIdx.x / kWarp, lane = threadIdx.x % kWarp;
  const int64_t b = blockIdx.z, h = blockIdx.y, t0 = int64_t(blockIdx.x) * kQueries;
  const int64_t t = t0 + warp;
  const bool query = t < g.T;
  const float* qkv_b = qkv + b * g.T * 3 * g.C;
  const int32_t* keep = key_mask != nullptr ? key_mask + b * g.T : nullptr;
  stage_rows(sQ, g.D, qkv_b + h * g.D, 3 * g.C, t0, kQueries, g);
  stage_rows(sdO, g.D, dout + b * g.T * g.C + h * g.D, g.C, t0, kQueries, g);
  const float* q = sQ + warp * g.D;
  const float* d_o = sdO + warp * g.D;
  const float lse_t = query ? lse[(b * g.H + h) * g.T + t] : INFINITY;
  const float row_t = query ? rowdot[(b * g.H + h) * g.T + t] : 0.0f;
  const int64_t last_t = t0 + kQueries < g.T ? t0 + kQueries : g.T;
  const int64_t key_end = g.causal ? last_t : g.T;

  float dq[kDimsPerLane] = {};
  for (int64_t s0 = 0; s0 < key_end; s0 += kKeyTile) {
    __syncthreads();   // the previous tile is no longer being read (and sQ, sdO are staged)
    stage_rows(sK, ld, qkv_b + g.C + h * g.D, 3 * g.C, s0, kKeyTile, g);
    stage_rows(sV, ld, qkv_b + 2 * g.C + h * g.D, 3 * g.C, s0, kKeyTile, g);
    __syncthreads();
    if (!query) continue;
    const int64_t s = s0 + lane;
    float ds = 0.0f;
    if (s < g.T && !(g.causal && s > t) && (keep == nullptr || keep[s] != 0)) {
      const float p = expf(dot_d(q, sK + lane * ld, g.D) * g.scale - lse_t);
      ds = p * (dot_d(d_o, sV + lane * ld, g.D) - row_t) * g.scale;
    }
    const int keys = g.T - s0 < kKeyTile ? int(g.T - s0) : kKeyTile;
    for (int j = 0; j < keys; ++j) {
      const float dsj = __shfl_sync(kFullMask, ds, j);
      if (dsj == 0.0f) continue;   // the same on every lane
      const float* kj = sK + j * ld;
      for (int i = 0; i < kDimsPerLane; ++i) {
        const int64_t d = lane + int64_t(i) * kWarp;
        if (d < g.D) dq[i] += dsj * kj[d];
      }
    }
  }
  if (!query) return;
  float* row = dqkv + (b * g.T + t) * 3 * g.C + h * g.D;
  for (int i = 0; i < kDimsPerLane; ++i) {
    const int64_t d = lane + int64_t(i) * kWarp;
    if (d < g.D) row[d] = dq[i];
  }
}

// ---- backward with att (Note [Attention backward on cuBLAS]) ------------------------

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

// The fused kernels' limits: D for the per-lane registers and shared memory, B and H for
// the grid's y and z.
void check_limits(const char* kernel, int64_t B, const AttentionGeometry& g) {
  if (g.D > kMaxHeadDim)
    throw Error(std::string(kernel) + ": the head size D = C / n_head = " + std::to_string(g.D) +
                " exceeds the CUDA kernel's " + std::to_string(kMaxHeadDim) +
                "; use more heads or keep the model on the CPU");
  if (B > 65535 || g.H > 65535)
    throw Error(std::string(kernel) + ": B = " + std::to_string(B) + " and n_head = " +
                std::to_string(g.H) + " must be at most 65535 on CUDA (grid limits)");
}

}  // namespace

void attention_forward(Tensor out, Tensor lse, Tensor att, Tensor qkv, Tensor key_mask,
                       int n_head, bool causal) {
  KernelCall call("attention_forward", {{"out", out}, {"lse", lse}, {"att", att}, {"qkv", qkv},
                                        {"key_mask", key_mask}});
  const AttentionGeometry g = geometry(qkv, n_head, causal);
  const int64_t B = qkv.shape()[0];
  check_limits("attention_forward", B, g);
  if (B == 0 || g.T == 0) return;
  const size_t smem = sizeof(float) * size_t(kKeyTile * g.ld_k + kKeyTile * g.D + kQueries * g.D);
  const dim3 grid(unsigned((g.T + kQueries - 1) / kQueries), unsigned(g.H), unsigned(B));
  attention_forward_tiled<<<grid, kQueries * kWarp, smem, call.stream()>>>(
      out.f32(), lse.f32(), present(att) ? att.f32() : nullptr, qkv.f32(),
      present(key_mask) ? key_mask.i32() : nullptr, g);
  LOOM_CUDA_CHECK_LAUNCH("attention_forward_tiled");
}

namespace {

// Note [Attention backward from lse]; rowdot is the (B, H, T) scratch.
void backward_from_lse(const KernelCall& call, Tensor dqkv, Tensor rowdot, Tensor dout,
                       Tensor qkv, Tensor out, Tensor lse, Tensor key_mask,
                       const AttentionGeometry& g, int64_t B) {
  const int32_t* mask = present(key_mask) ? key_mask.i32() : nullptr;
  constexpr int kThreads = 256;
  const int64_t rows = B * g.H * g.T;
  attention_row_dot<<<unsigned((rows * kWarp + kThreads - 1) / kThreads), kThreads, 0,
                      call.stream()>>>(rowdot.f32(), dout.f32(), out.f32(), rows, g);
  LOOM_CUDA_CHECK_LAUNCH("attention_row_dot");
  const size_t smem_kv =
      sizeof(float) * size_t(2 * kQueryTile * g.ld_k + 2 * kQueryTile + 2 * kKeys * g.D);
  const dim3 grid_kv(unsigned((g.T + kKeys - 1) / kKeys), unsigned(g.H), unsigned(B));
  attention_backward_kv<<<grid_kv, kKeys * kWarp, smem_kv, call.stream()>>>(
      dqkv.f32(), dout.f32(), qkv.f32(), lse.f32(), rowdot.f32(), mask, g);
  LOOM_CUDA_CHECK_LAUNCH("attention_backward_kv");
  const size_t smem_q = sizeof(float) * size_t(2 * kKeyTile * g.ld_k + 2 * kQueries * g.D);
  const dim3 grid_q(unsigned((g.T + kQueries - 1) / kQueries), unsigned(g.H), unsigned(B));
  attention_backward_q<<<grid_q, kQueries * kWarp, smem_q, call.stream()>>>(
      dqkv.f32(), dout.f32(), qkv.f32(), lse.f32(), rowdot.f32(), mask, g);
  LOOM_CUDA_CHECK_LAUNCH("attention_backward_q");
}

// Note [Attention backward on cuBLAS]; datt is the (B, H, T, T) scratch.
void backward_from_att(const KernelCall& call, Tensor dqkv, Tensor datt, Tensor dout,
                       Tensor qkv, Tensor att, const AttentionGeometry& g, int64_t B) {
  const int64_t T = g.T, C = g.C, D = g.D, TT = T * T;
  float* dqkv_p = dqkv.f32();
  float* datt_p = datt.f32();
  const float* dout_p = dout.f32();
  const float* qkv_p = qkv.f32();
  const float* att_p = att.f32();
  for (int64_t b = 0; b < B; ++b) {   // dP = dO Vᵀ
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

}  // namespace

void attention_backward(Tensor dqkv, Tensor scratch, Tensor dout, Tensor qkv, Tensor out,
                        Tensor lse, Tensor att, Tensor key_mask, int n_head, bool causal) {
  KernelCall call("attention_backward",
                  {{"dqkv", dqkv}, {"scratch", scratch}, {"dout", dout}, {"qkv", qkv},
                   {"out", out}, {"lse", lse}, {"att", att}, {"key_mask", key_mask}});
  const AttentionGeometry g = geometry(qkv, n_head, causal);
  const int64_t B = qkv.shape()[0];
  if (present(att)) {   // cuBLAS: no limit on D
    if (B > 0 && g.T > 0) backward_from_att(call, dqkv, scratch, dout, qkv, att, g, B);
    return;
  }
  check_limits("attention_backward", B, g);
  if (B == 0 || g.T == 0) return;
  backward_from_lse(call, dqkv, scratch, dout, qkv, out, lse, key_mask, g, B);
}

}  // namespace loom::cuda
