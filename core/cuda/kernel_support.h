#pragma once
// What every core/cuda/<family>.cu shares: the checks and context of one kernel call
// (KernelCall), the range check of integer ids read back from the GPU, the cuBLAS handle
// and the fp32 GEMM compute type (TF32 or not). Host code; included only by .cu files.
// Device-side helpers (warp reductions, grid sizes) are in core/cuda/device_math.cuh.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <climits>
#include <cstdint>
#include <initializer_list>

#include "core/cuda/check.h"
#include "core/tensor.h"

namespace loom::cuda::detail {

// One argument of a kernel call: its name (for messages) and its tensor (empty: absent).
struct NamedTensor {
  const char* name;
  Tensor tensor;
};

// Note [CUDA kernel calls]
// The dispatch (core/kernels.cpp) has checked that every tensor claims one CUDA device,
// one floating dtype and the right shapes. A CUDA kernel then checks, before it touches
// memory, what only the CUDA side can:
//   - this process sees the device (no GPU, or CUDA_VISIBLE_DEVICES hiding it, is an
//     error naming the kernel and the device, never a crash);
//   - every pointer is device (or managed) memory of that device: a host pointer in a
//     Tensor labelled cuda:i would be an illegal address fault that poisons the CUDA
//     context for the rest of the process. cudaPointerGetAttributes costs ~1 us per
//     tensor on the host, no device work, a few ms per GPT-2 step at most;
//   - the floating dtype is f32: f64 (the finite-difference checks) is CPU only, and a
//     loom::Error names the kernel and the argument.
// In this order, so that the first two errors read "<kernel>: the tensors are on cuda:i
// but ...", whatever the dtype.
// It then makes the device current (restored on destruction) and picks the calling
// thread's current loom stream of that device (Note [CUDA streams] in core/device.h).
// Kernels allocate nothing: launches, cuBLAS calls and the range-check read-back only.
class KernelCall {
 public:
  KernelCall(const char* kernel, std::initializer_list<NamedTensor> tensors);
  ~KernelCall();
  KernelCall(const KernelCall&) = delete;
  KernelCall& operator=(const KernelCall&) = delete;

  const char* kernel() const { return kernel_; }
  int device() const { return device_; }
  cudaStream_t stream() const { return stream_; }

 private:
  const char* kernel_;
  int device_ = 0;
  int previous_device_ = -1;
  cudaStream_t stream_ = nullptr;
};

// Note [Range checks on the GPU]
// Token ids, segment ids, cross-entropy targets and gather positions index tables: an id
// out of range must be a loom::Error naming it (Note [Kernel contract]), and must not be
// used as an index (an out-of-bounds read or write on the GPU is at best garbage, at worst
// an illegal address fault that ends the CUDA context). So the families that take ids run
// a check kernel first: it records the FIRST bad position (atomicMin on the flat index, so
// the message names the same (b, t) as the CPU reference) in a __device__ variable, and
// the host reads it back before anything is written. The read-back synchronises the
// stream: a few us per call and no queueing of later kernels past it (and no CUDA graph
// capture of these families). The variable is module memory, allocated when the module
// loads, so kernels still allocate nothing; it is one per device, so two host threads
// checking ids on one device at once could see each other's result (loom runs one
// compute thread per GPU).
struct BadId {
  int64_t index = -1;   // flat index of the first bad id; -1 when all are good
  int32_t value = 0;    // the id found there
};
// The first n in [0, count) with ids[n] outside [0, limit) and ids[n] != allowed
// (kNoAllowedId: no exception, e.g. token ids; -1 for gather's empty slots, ignore_index
// for targets).
inline constexpr int64_t kNoAllowedId = INT64_MIN;
BadId first_bad_id(const KernelCall& call, const int32_t* ids, int64_t count, int64_t limit,
                   int64_t allowed);

// The calling thread's cuBLAS handle for the call's device, bound to the call's stream.
// Created on first use per (thread, device) - a setup-time allocation, like the CUDA
// context - and kept for the life of the process (destroying it at exit could run after
// the CUDA runtime has torn down).
cublasHandle_t cublas_handle(const KernelCall& call);

// The compute type of cuda_matmul() (Note [CUDA matmul precision] in core/kernels.h):
// CUBLAS_COMPUTE_32F, CUBLAS_COMPUTE_32F_FAST_TF32 or CUBLAS_COMPUTE_32F_FAST_16BF.
cublasComputeType_t fp32_compute_type();

// Row-major C (m x n, ldc) = alpha op(A) op(B) + beta C with A (m x k or k x m) and B
// (k x n or n x k) row-major, on the call's stream in f32 (TF32 when enabled): cuBLAS is
// column-major, so this computes Cᵀ = op(B)ᵀ op(A)ᵀ. `batch` > 1 runs a strided batch.
struct Gemm {
  bool ta = false, tb = false;
  int64_t m = 0, n = 0, k = 0;
  const float* a = nullptr;
  int64_t lda = 0, stride_a = 0;
  const float* b = nullptr;
  int64_t ldb = 0, stride_b = 0;
  float* c = nullptr;
  int64_t ldc = 0, stride_c = 0;
  float alpha = 1.0f, beta = 0.0f;
  int64_t batch = 1;
};
void gemm(const KernelCall& call, const Gemm& g);

// Launch geometry for a grid-stride loop over n items with `threads` per block.
unsigned blocks_for(int64_t n, int threads);

// (..., X): X, and the product of the leading dimensions (Note [Kernel contract]).
inline int64_t last_dim(const Tensor& t) {
  return t.shape().rank() == 0 ? 1 : t.shape()[t.shape().rank() - 1];
}
inline int64_t rows_of(const Tensor& t) {
  const int64_t x = last_dim(t);
  return x == 0 ? 0 : t.numel() / x;
}
inline bool present(const Tensor& t) { return t.data() != nullptr; }

}  // namespace loom::cuda::detail
