#include "core/device.h"

namespace loom {

std::string Device::str() const {
  return is_cpu() ? std::string("cpu") : "cuda:" + std::to_string(index);
}

DeviceGuard::DeviceGuard(Device device) {
  if (device.is_cuda()) {
    previous_ = detail::cuda_get_device();
    detail::cuda_set_device(device.index);
  }
}

DeviceGuard::~DeviceGuard() {
  if (previous_ >= 0) {
    try {
      detail::cuda_set_device(previous_);
    } catch (...) {
      // A destructor must not throw; the device stays as it is.
    }
  }
}

}  // namespace loom
