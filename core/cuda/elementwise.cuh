#pragma once
// A grid-stride elementwise launch shared by gelu, residual and tanh: out[i] = f(i) for
// i in [0, count), f a small functor. Header-only; included only by .cu files.
#include <string>

#include "core/cuda/kernel_support.h"

namespace loom::cuda::detail {

template <class F>
__global__ void elementwise(int64_t count, F f) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += int64_t(gridDim.x) * blockDim.x)
    f(i);
}

template <class F>
void launch_elementwise(const KernelCall& call, const char* name, int64_t count, F f) {
  if (count == 0) return;
  constexpr int kThreads = 256;
  elementwise<<<blocks_for(count, kThreads), kThreads, 0, call.stream()>>>(count, f);
  const cudaError_t status = cudaGetLastError();
  if (status != cudaSuccess)   // LOOM_CUDA_CHECK_LAUNCH, with the kernel's name at run time
    ::loom::detail::throw_library_error("CUDA", (std::string("launch of ") + name).c_str(),
                                        __FILE__, __LINE__, cudaGetErrorString(status));
}

}  // namespace loom::cuda::detail
