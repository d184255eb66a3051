// AdamW, LAMB, the global gradient norm and division on float32 device memory
// (core/optimizer_cuda.h; Notes [Optimizer chunks on the GPU] and [Same arithmetic as the
// CPU] there). One block of kThreads threads per chunk of kOptimizerChunk elements: each
// thread takes elements begin + t, begin + t + kThreads, ... (coalesced).
#include <cstdint>

#include "core/cuda/check.h"
#include "core/device.h"
#include "core/optimizer_cuda.h"

namespace loom::cuda {
namespace {

constexpr int kThreads = 256;

// The Adam direction of one element, in the CPU loop's order of float operations:
// m = b1 m + (1 − b1) g;  v = b2 v + (1 − b2) g g;  m̂ = m / c1;  v̂ = v / c2;
// returns m̂ / (√v̂ + eps). (CPU: `(1.0f - b1) * g[i]`, `(1.0f - b2) * g[i] * g[i]`.)
__device__ __forceinline__ float adam_direction(float& m, float& v, float g, const AdamScalars& s) {
  m = __fadd_rn(__fmul_rn(s.b1, m), __fmul_rn(__fsub_rn(1.0f, s.b1), g));
  v = __fadd_rn(__fmul_rn(s.b2, v), __fmul_rn(__fmul_rn(__fsub_rn(1.0f, s.b2), g), g));
  const float mhat = __fdiv_rn(m, s.c1), vhat = __fdiv_rn(v, s.c2);
  return __fdiv_rn(mhat, __fadd_rn(__fsqrt_rn(vhat), s.eps));
}

// LAMB's u from the already updated moments (pass 2 recomputes it as the CPU does).
__device__ __forceinline__ float lamb_u(float m, float v, float w, float wd, const AdamScalars& s) {
  const float dir = __fdiv_rn(__fdiv_rn(m, s.c1), __fadd_rn(__fsqrt_rn(__fdiv_rn(v, s.c2)), s.eps));
  return __fadd_rn(dir, __fmul_rn(wd, w));
}

// Sum of `x` over the block in a fixed tree order; the result is valid in thread 0.
__device__ double block_sum(double x, double* shared) {
  shared[threadIdx.x] = x;
  __syncthreads();
  for (int stride = blockDim.x / 2; stride > 0; stride /= 2) {
    if (threadIdx.x < stride) shared[threadIdx.x] += shared[threadIdx.x + stride];
    __syncthreads();
  }
  return shared[0];
}

// AdamW: w −= (lr · dir + decay_p · w)   (CPU: w[i] -= rate * (mhat / (√vhat + eps)) + wd * w[i]).
__global__ void adamw_kernel(OptimizerChunks t, AdamScalars s, float* w, const float* g, float* m,
                             float* v) {
  const int64_t c = blockIdx.x;
  const float wd = t.param_decays[t.chunk_param[c]] != 0 ? s.decay : 0.0f;
  for (int64_t i = t.chunk_begin[c] + threadIdx.x; i < t.chunk_end[c]; i += blockDim.x) {
    float mi = m[i], vi = v[i];
    const float dir = adam_direction(mi, vi, g[i], s);
    m[i] = mi;
    v[i] = vi;
    w[i] = __fsub_rn(w[i], __fadd_rn(__fmul_rn(s.rate, dir), __fmul_rn(wd, w[i])));
  }
}

// LAMB pass 1: moments, and per chunk Σ w² and Σ u² (double) into sums[c], sums[C + c].
__global__ void lamb_moments_kernel(OptimizerChunks t, AdamScalars s, const float* w,
                                    const float* g, float* m, float* v, double* sums) {
  __shared__ double shared[kThreads];
  const int64_t c = blockIdx.x;
  const float wd = t.param_decays[t.chunk_param[c]] != 0 ? s.decay : 0.0f;
  double sw = 0.0, su = 0.0;
  for (int64_t i = t.chunk_begin[c] + threadIdx.x; i < t.chunk_end[c]; i += blockDim.x) {
    float mi = m[i], vi = v[i];
    (void)adam_direction(mi, vi, g[i], s);
    m[i] = mi;
    v[i] = vi;
    const float u = lamb_u(mi, vi, w[i], wd, s);
    sw += double(w[i]) * double(w[i]);
    su += double(u) * double(u);
  }
  const double total_w = block_sum(sw, shared);
  __syncthreads();   // block_sum's result is read from shared[0] before it is reused
  if (threadIdx.x == 0) sums[c] = total_w;
  const double total_u = block_sum(su, shared);
  if (threadIdx.x == 0) sums[t.chunks + c] = total_u;
}

// trust[p] = ‖w‖ / ‖u‖ for decaying parameters with both norms > 0, else 1; chunks added
// in order. One thread per parameter.
__global__ void lamb_trust_kernel(OptimizerChunks t, const double* sums, double* trust) {
  const int p = blockIdx.x * blockDim.x + threadIdx.x;
  if (p >= t.params) return;
  double sw = 0.0, su = 0.0;
  for (int64_t c = t.param_first_chunk[p]; c < t.param_first_chunk[p + 1]; ++c) {
    sw += sums[c];
    su += sums[t.chunks + c];
  }
  trust[p] = t.param_decays[p] != 0 && sw > 0.0 && su > 0.0 ? sqrt(sw) / sqrt(su) : 1.0;
}

// LAMB pass 2: w −= float(lr · trust_p) · u.
__global__ void lamb_update_kernel(OptimizerChunks t, AdamScalars s, double lr, const double* trust,
                                   float* w, const float* m, const float* v) {
  const int64_t c = blockIdx.x;
  const int p = t.chunk_param[c];
  const float wd = t.param_decays[p] != 0 ? s.decay : 0.0f;
  const float rate = static_cast<float>(lr * trust[p]);
  for (int64_t i = t.chunk_begin[c] + threadIdx.x; i < t.chunk_end[c]; i += blockDim.x)
    w[i] = __fsub_rn(w[i], __fmul_rn(rate, lamb_u(m[i], v[i], w[i], wd, s)));
}

// Σ g² of block b's range [n·b/B, n·(b+1)/B) into partial[b] (clip_grad_norm's blocks).
__global__ void sum_squares_kernel(const float* g, int64_t n, double* partial) {
  __shared__ double shared[kThreads];
  const int64_t b = blockIdx.x, blocks = gridDim.x;
  const int64_t lo = n * b / blocks, hi = n * (b + 1) / blocks;
  double sum = 0.0;
  for (int64_t i = lo + threadIdx.x; i < hi; i += blockDim.x) sum += double(g[i]) * double(g[i]);
  const double total = block_sum(sum, shared);
  if (threadIdx.x == 0) partial[b] = total;
}

// partial[blocks] = √(Σ partial[0 .. blocks)), added in order by one thread.
__global__ void norm_kernel(double* partial, int blocks) {
  if (threadIdx.x != 0 || blockIdx.x != 0) return;
  double sum = 0.0;
  for (int b = 0; b < blocks; ++b) sum += partial[b];
  partial[blocks] = sqrt(sum);
}

// g *= float(max_norm / (norm + 1e-6)) when norm > max_norm (norm read on the device).
__global__ void clip_kernel(float* g, int64_t n, const double* norm, double max_norm) {
  const double total = *norm;
  if (!(total > max_norm)) return;
  const auto factor = static_cast<float>(max_norm / (total + 1e-6));
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    g[i] = __fmul_rn(g[i], factor);
}

__global__ void divide_kernel(float* x, int64_t n, float divisor) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += int64_t(gridDim.x) * blockDim.x)
    x[i] = __fdiv_rn(x[i], divisor);
}

// The calling thread's current loom stream of `device` (Note [CUDA streams] in
// core/device.h): the layer kernels' stream, so an update follows backward in order.
cudaStream_t stream_of(int device) { return static_cast<cudaStream_t>(cuda_current_stream(device)); }

// Blocks for an element-wise grid-stride kernel over n elements.
unsigned elementwise_blocks(int64_t n) {
  const int64_t blocks = (n + kThreads - 1) / kThreads;
  return static_cast<unsigned>(blocks < 4096 ? (blocks > 0 ? blocks : 1) : 4096);
}

}  // namespace

void adamw_step(const OptimizerChunks& t, const AdamScalars& s, float* w, const float* g, float* m,
                float* v) {
  if (t.chunks == 0) return;
  DeviceGuard on_device(Device::cuda(t.device));
  adamw_kernel<<<static_cast<unsigned>(t.chunks), kThreads, 0, stream_of(t.device)>>>(t, s, w, g, m, v);
  LOOM_CUDA_CHECK_LAUNCH("adamw_kernel");
}

void lamb_step(const OptimizerChunks& t, const AdamScalars& s, double lr, float* w, const float* g,
               float* m, float* v, double* chunk_sums, double* trust) {
  if (t.chunks == 0) return;
  DeviceGuard on_device(Device::cuda(t.device));
  const auto chunks = static_cast<unsigned>(t.chunks);
  const cudaStream_t stream = stream_of(t.device);
  lamb_moments_kernel<<<chunks, kThreads, 0, stream>>>(t, s, w, g, m, v, chunk_sums);
  LOOM_CUDA_CHECK_LAUNCH("lamb_moments_kernel");
  lamb_trust_kernel<<<static_cast<unsigned>((t.params + kThreads - 1) / kThreads), kThreads, 0, stream>>>(
      t, chunk_sums, trust);
  LOOM_CUDA_CHECK_LAUNCH("lamb_trust_kernel");
  lamb_update_kernel<<<chunks, kThreads, 0, stream>>>(t, s, lr, trust, w, m, v);
  LOOM_CUDA_CHECK_LAUNCH("lamb_update_kernel");
}

double grad_norm_clip(int device, float* g, int64_t n, double max_norm, double* scratch) {
  DeviceGuard on_device(Device::cuda(device));
  const cudaStream_t stream = stream_of(device);
  sum_squares_kernel<<<kNormBlocks, kThreads, 0, stream>>>(g, n, scratch);
  LOOM_CUDA_CHECK_LAUNCH("sum_squares_kernel");
  norm_kernel<<<1, 1, 0, stream>>>(scratch, kNormBlocks);
  LOOM_CUDA_CHECK_LAUNCH("norm_kernel");
  if (max_norm > 0.0 && n > 0) {
    clip_kernel<<<elementwise_blocks(n), kThreads, 0, stream>>>(g, n, scratch + kNormBlocks, max_norm);
    LOOM_CUDA_CHECK_LAUNCH("clip_kernel");
  }
  double norm = 0.0;   // pageable host memory: the copy is complete when the sync returns
  LOOM_CUDA_CHECK(cudaMemcpyAsync(&norm, scratch + kNormBlocks, sizeof(double), cudaMemcpyDeviceToHost, stream));
  LOOM_CUDA_CHECK(cudaStreamSynchronize(stream));
  return norm;
}

void divide(int device, float* x, int64_t n, float divisor) {
  if (n == 0) return;
  DeviceGuard on_device(Device::cuda(device));
  divide_kernel<<<elementwise_blocks(n), kThreads, 0, stream_of(device)>>>(x, n, divisor);
  LOOM_CUDA_CHECK_LAUNCH("divide_kernel");
}

}  // namespace loom::cuda
