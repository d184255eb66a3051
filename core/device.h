#pragma once
// Where memory lives. A Device is a value: {kind, index}. The CUDA entry points are
// implemented in core/cuda/device_cuda.cu when loom is built with CUDA, and by
// core/device_nocuda.cpp otherwise (they report zero devices and refuse CUDA memory).
#include <string>

namespace loom {

enum class DeviceKind { kCpu, kCuda };

struct Device {
  DeviceKind kind = DeviceKind::kCpu;
  int index = 0;

  static Device cpu() { return {DeviceKind::kCpu, 0}; }
  static Device cuda(int index) { return {DeviceKind::kCuda, index}; }
  bool is_cpu() const { return kind == DeviceKind::kCpu; }
  bool is_cuda() const { return kind == DeviceKind::kCuda; }
  bool operator==(const Device&) const = default;
  std::string str() const;  // "cpu", "cuda:1"
};

// Number of CUDA devices this process can see (0 without CUDA or without a GPU).
int cuda_device_count();
inline bool cuda_available() { return cuda_device_count() > 0; }
// "NVIDIA H200, 139 GiB" for device i; empty when there is none.
std::string cuda_device_name(int index);
// CUDA runtime / driver versions as "13.0"; "none" when built without CUDA (the driver:
// also when no driver is installed).
std::string cuda_runtime_version();
std::string cuda_driver_version();

// What `loom env` lists of a GPU, and how ranks on one node tell physical GPUs apart.
struct CudaDeviceInfo {
  std::string name;            // "NVIDIA H100 80GB HBM3"
  size_t total_memory = 0;     // bytes
  int cc_major = 0, cc_minor = 0;   // compute capability
  std::string uuid;            // "GPU-4f0c...": the same physical GPU under any numbering
};
// Device `index` (0 <= index < cuda_device_count()); throws loom::Error otherwise.
CudaDeviceInfo cuda_device_info(int index);

// Note [CUDA streams]
// The CUDA kernels of core/kernels.h are enqueued on the calling thread's current loom
// stream of the tensors' device and never synchronise with the host, except the families
// that must read a range check back (Note [Range checks on the GPU] in
// core/cuda/kernel_support.h). The stream is an opaque cudaStream_t (no CUDA header in
// public headers). The default, nullptr, is the device's legacy default stream, which is
// ordered with Buffer's cudaMemcpy / cudaMemset; whoever sets another stream (e.g. to
// overlap compute with NCCL) orders it with the other streams through events. Per thread
// and per device, as PyTorch's current stream; the stream is not owned here.
void* cuda_current_stream(int index);
void set_cuda_current_stream(int index, void* stream);

// Makes `device` current for the calling thread for the guard's lifetime (no-op for CPU).
class DeviceGuard {
 public:
  explicit DeviceGuard(Device device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;
};

namespace detail {
// Raw allocation on a device; used by Buffer. Throw loom::Error on failure.
void* cuda_malloc(size_t bytes, int index);
void cuda_free(void* ptr, int index) noexcept;
void* cuda_malloc_host(size_t bytes);
void cuda_free_host(void* ptr) noexcept;
void cuda_memcpy(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);
void cuda_memset_zero(void* ptr, size_t bytes, int index);
int cuda_get_device();
void cuda_set_device(int index);
}  // namespace detail

}  // namespace loom
