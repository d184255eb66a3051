#pragma once
// Kernels that GPU tests use to hold a stream at a known point and to observe, by a
// result rather than a time, what ran (tests/gpu/gpu_test_kernels.cu). Plain C++: the
// tests themselves are built by the host compiler.
#include <cstdint>

namespace loom::test {

// An int in page-locked host memory mapped into the device: the host sets it while a
// kernel spins on it, or a kernel sets it while the host polls.
class HostFlag {
 public:
  HostFlag();
  ~HostFlag();
  HostFlag(const HostFlag&) = delete;
  HostFlag& operator=(const HostFlag&) = delete;
  void set(int value);
  int get() const;
  int* device_pointer() const { return device_; }

 private:
  int* host_ = nullptr;
  int* device_ = nullptr;
};

// On `stream` (a cudaStream_t, e.g. cuda_current_stream(d): the compute stream; nullptr is
// the legacy default stream) on the current CUDA device:
// a one-thread kernel that spins until `release` is non-zero or `limit_ms` pass, then
// copies n floats src -> dst (n may be 0). Holds everything queued after it on that stream.
void launch_hold_then_copy(void* stream, const HostFlag& release, int limit_ms, float* dst,
                           const float* src, int64_t n);
// On `stream`: a kernel that sets `flag` to 1 when it runs.
void launch_signal(void* stream, const HostFlag& flag);
// cudaDeviceSynchronize on the current device, checked.
void device_synchronize();

}  // namespace loom::test
