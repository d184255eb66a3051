#pragma once
// Device-side helpers shared by core/cuda/<family>.cu: warp reductions and a deterministic
// column-sum kernel. Header-only (__forceinline__ functions and templates) so that no
// relocatable device code is needed; included only by .cu files.
#include <cuda_runtime.h>

#include <cstdint>

namespace loom::cuda::detail {

constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kWarp = 32;

// Butterfly reductions: every lane ends with the warp's result, in a fixed order.
__device__ __forceinline__ float warp_sum(float v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2) v += __shfl_xor_sync(kFullMask, v, offset);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int offset = kWarp / 2; offset > 0; offset /= 2)
    v = fmaxf(v, __shfl_xor_sync(kFullMask, v, offset));
  return v;
}

// Note [Deterministic column sums]
// Weight gradients that are sums over rows (linear's dbias, layernorm's dweight and dbias,
// the segment table of the embedding) are accumulated without atomics: a block of
// kColumnTile x kRowLanes threads owns kColumnTile columns; thread (x, y) sums rows
// y, y + kRowLanes, ... of its column in order, then lane y = 0 adds the kRowLanes partial
// sums in order and does dst[c] += total. The order depends only on N, so results are
// bitwise reproducible run to run (not equal to the CPU's row order: both are within the
// fp32 bound of the exact sum). The grid is ceil(C / 32) blocks of 512 threads: enough for
// C >= ~2k; smaller C leaves SMs idle, which at these sizes costs microseconds.
constexpr int kColumnTile = 32;
constexpr int kRowLanes = 16;

// dst[c] += Σ_n term(n, c) for c in [0, C), n in [0, N). Launch with
// dim3(ceil(C / kColumnTile)) blocks of dim3(kColumnTile, kRowLanes) threads.
template <class Term>
__global__ void accumulate_column_sums(float* dst, int64_t N, int64_t C, Term term) {
  __shared__ float part[kRowLanes][kColumnTile + 1];
  const int64_t c = int64_t(blockIdx.x) * kColumnTile + threadIdx.x;
  float s = 0.0f;
  if (c < C)
    for (int64_t n = threadIdx.y; n < N; n += kRowLanes) s += term(n, c);
  part[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y != 0 || c >= C) return;
  float total = 0.0f;
  for (int r = 0; r < kRowLanes; ++r) total += part[r][threadIdx.x];
  dst[c] += total;
}

inline dim3 column_sum_blocks(int64_t C) {
  return dim3(static_cast<unsigned>((C + kColumnTile - 1) / kColumnTile));
}
inline dim3 column_sum_threads() { return dim3(kColumnTile, kRowLanes); }

// A term that is a plain matrix element: x[n * C + c].
struct MatrixTerm {
  const float* x;
  int64_t C;
  __device__ float operator()(int64_t n, int64_t c) const { return x[n * C + c]; }
};

}  // namespace loom::cuda::detail
