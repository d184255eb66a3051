#pragma once
// Buffer: an owning, aligned, move-only allocation on a Device. Host buffers are 64-byte
// aligned (one cache line, a full AVX-512 vector); pinned host buffers come from
// cudaMallocHost; CUDA buffers from cudaMalloc. Allocate at setup, never in a step loop.
#include <cstddef>

#include "core/device.h"
#include "core/tensor.h"

namespace loom {

enum class MemoryKind { kHost, kPinnedHost, kDevice };

class Buffer {
 public:
  Buffer() = default;
  // Host memory (zeroed).
  explicit Buffer(size_t bytes) : Buffer(bytes, Device::cpu()) {}
  // Memory on `device` (zeroed); `pinned` asks for page-locked host memory (CUDA builds).
  Buffer(size_t bytes, Device device, bool pinned = false);
  ~Buffer();
  Buffer(Buffer&& other) noexcept;
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  void* data() const { return data_; }
  size_t size() const { return bytes_; }
  Device device() const { return device_; }
  MemoryKind memory_kind() const { return kind_; }

  // The whole buffer as a 1-D tensor of `dtype` (size must be a multiple of its size).
  Tensor as(DType dtype) const;
  void zero();

  static constexpr size_t kAlignment = 64;

 private:
  void release() noexcept;
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_{};
  MemoryKind kind_ = MemoryKind::kHost;
};

// Whether host buffers of 4 MiB and more are 2 MiB-aligned and advised onto transparent
// huge pages (Note [Huge pages for parameters] in buffer.cpp; config run.hugepages, applied
// by the Session at start-up, before the big buffers are allocated). On by default; a change
// affects only buffers allocated after it.
void set_huge_pages(bool on);
bool huge_pages();

// Copies bytes between any two devices (host<->host with memcpy, else through CUDA).
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes);

}  // namespace loom
