// The CUDA entry points of core/device.h for a build without CUDA: no devices, and any
// request for CUDA memory is an error that says how to get a CUDA build.
#include "core/device.h"
#include "core/error.h"

namespace loom {
namespace {
[[noreturn]] void no_cuda() {
  throw Error("this loom was built without CUDA (LOOM_CUDA=OFF or no nvcc at configure time); "
              "rebuild with -DLOOM_CUDA=ON on a machine with the CUDA toolkit");
}
}  // namespace

int cuda_device_count() { return 0; }
std::string cuda_device_name(int) { return {}; }
std::string cuda_runtime_version() { return "none"; }
std::string cuda_driver_version() { return "none"; }
CudaDeviceInfo cuda_device_info(int) { no_cuda(); }

void* cuda_current_stream(int) { return nullptr; }
void set_cuda_current_stream(int, void*) { no_cuda(); }

namespace detail {
void* cuda_malloc(size_t, int) { no_cuda(); }
void cuda_free(void*, int) noexcept {}
void* cuda_malloc_host(size_t) { no_cuda(); }
void cuda_free_host(void*) noexcept {}
void cuda_memcpy(void*, Device, const void*, Device, size_t) { no_cuda(); }
void cuda_memset_zero(void*, size_t, int) { no_cuda(); }
int cuda_get_device() { return 0; }
void cuda_set_device(int) { no_cuda(); }
}  // namespace detail

}  // namespace loom
