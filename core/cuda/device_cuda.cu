// The CUDA entry points of core/device.h. Every runtime call is checked.
#include <cuda_runtime.h>

#include <array>
#include <cstdio>
#include <string>

#include "core/cuda/check.h"
#include "core/device.h"
#include "core/error.h"

namespace loom {

int cuda_device_count() {
  int n = 0;
  // No driver or no device is not an error here: it means zero devices.
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return n;
}

std::string cuda_device_name(int index) {
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, index) != cudaSuccess) return {};
  return std::string(prop.name) + ", " + std::to_string(prop.totalGlobalMem >> 30) + " GiB";
}

namespace {
std::string version_text(int v) { return std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10); }
}  // namespace

std::string cuda_runtime_version() {
  int v = 0;
  if (cudaRuntimeGetVersion(&v) != cudaSuccess) return "unknown";
  return version_text(v);
}

std::string cuda_driver_version() {
  int v = 0;
  if (cudaDriverGetVersion(&v) != cudaSuccess || v == 0) {
    (void)cudaGetLastError();
    return "none";
  }
  return version_text(v);
}

CudaDeviceInfo cuda_device_info(int index) {
  const int count = cuda_device_count();
  LOOM_CHECK(index >= 0 && index < count, Error,
             "cuda:" + std::to_string(index) + " does not exist (" + std::to_string(count) +
                 " CUDA device(s) visible; CUDA_VISIBLE_DEVICES narrows them)");
  cudaDeviceProp prop{};
  LOOM_CUDA_CHECK(cudaGetDeviceProperties(&prop, index));
  CudaDeviceInfo info;
  info.name = prop.name;
  info.total_memory = prop.totalGlobalMem;
  info.cc_major = prop.major;
  info.cc_minor = prop.minor;
  char uuid[64] = "GPU";
  size_t at = 3;
  for (int i = 0; i < 16; ++i) {
    if (i == 0 || i == 4 || i == 6 || i == 8 || i == 10) uuid[at++] = '-';
    std::snprintf(uuid + at, sizeof uuid - at, "%02x", static_cast<unsigned char>(prop.uuid.bytes[i]));
    at += 2;
  }
  info.uuid = uuid;
  return info;
}

namespace {
// Note [CUDA streams]: the current stream of each device, per thread.
constexpr int kMaxCudaDevices = 64;
thread_local std::array<void*, kMaxCudaDevices> current_streams{};

int stream_slot(int index) {
  LOOM_CHECK(index >= 0 && index < kMaxCudaDevices, Error,
             "CUDA device index " + std::to_string(index) + " is outside [0, " +
                 std::to_string(kMaxCudaDevices) + ")");
  return index;
}
}  // namespace

void* cuda_current_stream(int index) { return current_streams[size_t(stream_slot(index))]; }
void set_cuda_current_stream(int index, void* stream) {
  current_streams[size_t(stream_slot(index))] = stream;
}

namespace detail {

void* cuda_malloc(size_t bytes, int index) {
  DeviceGuard guard(Device::cuda(index));
  void* ptr = nullptr;
  LOOM_CUDA_CHECK(cudaMalloc(&ptr, bytes));
  return ptr;
}

void cuda_free(void* ptr, int index) noexcept {
  int prev = 0;
  if (cudaGetDevice(&prev) == cudaSuccess && cudaSetDevice(index) == cudaSuccess) {
    cudaFree(ptr);
    cudaSetDevice(prev);
  }
}

void* cuda_malloc_host(size_t bytes) {
  void* ptr = nullptr;
  LOOM_CUDA_CHECK(cudaMallocHost(&ptr, bytes));
  return ptr;
}

void cuda_free_host(void* ptr) noexcept { cudaFreeHost(ptr); }

void cuda_memcpy(void* dst, Device, const void* src, Device, size_t bytes) {
  LOOM_CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDefault));
}

void cuda_memset_zero(void* ptr, size_t bytes, int index) {
  DeviceGuard guard(Device::cuda(index));
  LOOM_CUDA_CHECK(cudaMemset(ptr, 0, bytes));
}

int cuda_get_device() {
  int d = 0;
  LOOM_CUDA_CHECK(cudaGetDevice(&d));
  return d;
}

void cuda_set_device(int index) { LOOM_CUDA_CHECK(cudaSetDevice(index)); }

}  // namespace detail
}  // namespace loom
