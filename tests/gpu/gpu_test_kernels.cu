// Test kernels (tests/gpu/gpu_test_kernels.h).
#include "core/cuda/check.h"
#include "tests/gpu/gpu_test_kernels.h"

namespace loom::test {
namespace {

__device__ uint64_t now_ns() {
  uint64_t t = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

__global__ void hold_then_copy_kernel(const volatile int* release, uint64_t limit_ns, float* dst,
                                      const float* src, int64_t n) {
  const uint64_t start = now_ns();
  while (*release == 0 && now_ns() - start < limit_ns) {
  }
  for (int64_t i = 0; i < n; ++i) dst[i] = src[i];
}

__global__ void signal_kernel(volatile int* flag) {
  *flag = 1;
  __threadfence_system();
}

}  // namespace

HostFlag::HostFlag() {
  LOOM_CUDA_CHECK(cudaHostAlloc(reinterpret_cast<void**>(&host_), sizeof(int), cudaHostAllocMapped));
  *host_ = 0;
  LOOM_CUDA_CHECK(cudaHostGetDevicePointer(reinterpret_cast<void**>(&device_), host_, 0));
}

HostFlag::~HostFlag() { cudaFreeHost(host_); }

void HostFlag::set(int value) {
  *static_cast<volatile int*>(host_) = value;
}

int HostFlag::get() const { return *static_cast<const volatile int*>(host_); }

void launch_hold_then_copy(void* stream, const HostFlag& release, int limit_ms, float* dst,
                           const float* src, int64_t n) {
  hold_then_copy_kernel<<<1, 1, 0, static_cast<cudaStream_t>(stream)>>>(
      release.device_pointer(), uint64_t(limit_ms) * 1000000ull, dst, src, n);
  LOOM_CUDA_CHECK_LAUNCH("hold_then_copy_kernel");
}

void launch_signal(void* stream, const HostFlag& flag) {
  signal_kernel<<<1, 1, 0, static_cast<cudaStream_t>(stream)>>>(flag.device_pointer());
  LOOM_CUDA_CHECK_LAUNCH("signal_kernel");
}

void device_synchronize() { LOOM_CUDA_CHECK(cudaDeviceSynchronize()); }

}  // namespace loom::test
