#pragma once
// The one CUDA error-check header (STYLE.md rule 7): every CUDA runtime call, cuBLAS call
// and kernel launch in core/cuda/*.cu goes through one of these macros. A failure throws
// loom::LibraryError (core/error.h) whose message names the library, the call as written,
// file:line and the library's own error string (detail::throw_library_error), e.g.
//   CUDA call failed: cudaMemsetAsync(din, 0, bytes, stream) at .../gather_rows.cu:97: out of memory
// Included only by .cu files (DESIGN.md header rule: no CUDA header in public headers).
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include "core/error.h"

namespace loom::cuda::detail {

// The cuBLAS status as text ("CUBLAS_STATUS_NOT_SUPPORTED"; cuBLAS >= 11.4).
inline const char* cublas_status_string(cublasStatus_t status) {
  return cublasGetStatusString(status);
}

}  // namespace loom::cuda::detail

// LOOM_CUDA_CHECK(cudaMemsetAsync(p, 0, n, stream)): a cudaError_t other than cudaSuccess
// throws. The error is also cleared from the runtime's "last error" slot so that a later
// LOOM_CUDA_CHECK_LAUNCH does not report it a second time.
#define LOOM_CUDA_CHECK(expr)                                                               \
  do {                                                                                      \
    const cudaError_t loom_cuda_status_ = (expr);                                           \
    if (loom_cuda_status_ != cudaSuccess) [[unlikely]] {                                    \
      (void)cudaGetLastError();                                                             \
      ::loom::detail::throw_library_error("CUDA", #expr, __FILE__, __LINE__,                \
                                          cudaGetErrorString(loom_cuda_status_));           \
    }                                                                                       \
  } while (0)

// LOOM_CUBLAS_CHECK(cublasGemmEx(...)): a cublasStatus_t other than success throws.
#define LOOM_CUBLAS_CHECK(expr)                                                             \
  do {                                                                                      \
    const cublasStatus_t loom_cublas_status_ = (expr);                                      \
    if (loom_cublas_status_ != CUBLAS_STATUS_SUCCESS) [[unlikely]]                          \
      ::loom::detail::throw_library_error(                                                  \
          "cuBLAS", #expr, __FILE__, __LINE__,                                              \
          ::loom::cuda::detail::cublas_status_string(loom_cublas_status_));                 \
  } while (0)

// LOOM_CUDA_CHECK_LAUNCH(name): right after `kernel<<<grid, block, smem, stream>>>(...)`.
// A launch reports its configuration errors (too many threads, too much shared memory,
// no kernel image for this GPU) only through cudaGetLastError; `name` is the kernel's
// name for the message. Errors while the kernel runs surface at the next synchronising
// call, which is checked too.
#define LOOM_CUDA_CHECK_LAUNCH(name)                                                        \
  do {                                                                                      \
    const cudaError_t loom_cuda_status_ = cudaGetLastError();                               \
    if (loom_cuda_status_ != cudaSuccess) [[unlikely]]                                      \
      ::loom::detail::throw_library_error("CUDA", "launch of " name, __FILE__, __LINE__,    \
                                          cudaGetErrorString(loom_cuda_status_));           \
  } while (0)
