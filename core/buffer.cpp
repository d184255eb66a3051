#include "core/buffer.h"

#include <sys/mman.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>
#include <utility>

namespace loom {
namespace {

// Note [Huge pages for parameters]
// Embedding training reads and writes rows at random all over (V, D) tables of tens to
// hundreds of MB; with 4 KiB pages nearly every row touch is a TLB miss (a 27 MB table is
// 6,700 pages; the second-level TLB holds ~1,500). Host buffers of 4 MiB and more are
// therefore 2 MiB-aligned and advised MADV_HUGEPAGE, which the usual Linux setting
// (transparent_hugepage = madvise) honours before the memset below faults the pages in.
// run.hugepages = false turns it off (set_huge_pages; for measuring, or where memory is
// tight).
constexpr size_t kHugePage = size_t{2} << 20;
constexpr size_t kHugeFrom = size_t{4} << 20;

std::atomic<bool> g_huge_pages{true};

}  // namespace

void set_huge_pages(bool on) { g_huge_pages.store(on, std::memory_order_relaxed); }
bool huge_pages() { return g_huge_pages.load(std::memory_order_relaxed); }

Buffer::Buffer(size_t bytes, Device device, bool pinned) : bytes_(bytes), device_(device) {
  if (bytes == 0) return;
  if (device.is_cuda()) {
    kind_ = MemoryKind::kDevice;
    data_ = detail::cuda_malloc(bytes, device.index);
    detail::cuda_memset_zero(data_, bytes, device.index);
    return;
  }
  if (pinned) {
    kind_ = MemoryKind::kPinnedHost;
    data_ = detail::cuda_malloc_host(bytes);
  } else {
    const bool huge = bytes >= kHugeFrom && huge_pages();
    const size_t align = huge ? kHugePage : kAlignment;
    size_t rounded = (bytes + align - 1) / align * align;
    data_ = std::aligned_alloc(align, rounded);
    if (data_ == nullptr)
      throw Error("out of host memory: could not allocate " + std::to_string(bytes) + " bytes");
    if (huge) ::madvise(data_, rounded, MADV_HUGEPAGE);   // advice only: failure is harmless
  }
  std::memset(data_, 0, bytes);
}

Buffer::~Buffer() { release(); }

Buffer::Buffer(Buffer&& other) noexcept
    : data_(std::exchange(other.data_, nullptr)),
      bytes_(std::exchange(other.bytes_, 0)),
      device_(other.device_),
      kind_(other.kind_) {}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = std::exchange(other.data_, nullptr);
    bytes_ = std::exchange(other.bytes_, 0);
    device_ = other.device_;
    kind_ = other.kind_;
  }
  return *this;
}

void Buffer::release() noexcept {
  if (data_ == nullptr) return;
  switch (kind_) {
    case MemoryKind::kHost: std::free(data_); break;
    case MemoryKind::kPinnedHost: detail::cuda_free_host(data_); break;
    case MemoryKind::kDevice: detail::cuda_free(data_, device_.index); break;
  }
  data_ = nullptr;
  bytes_ = 0;
}

Tensor Buffer::as(DType dtype) const {
  size_t esize = dtype_size(dtype);
  LOOM_ASSERT(bytes_ % esize == 0, "buffer size is not a multiple of the dtype size");
  return Tensor(data_, {static_cast<int64_t>(bytes_ / esize)}, dtype, device_);
}

void Buffer::zero() {
  if (data_ == nullptr) return;
  if (device_.is_cuda())
    detail::cuda_memset_zero(data_, bytes_, device_.index);
  else
    std::memset(data_, 0, bytes_);
}

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes) {
  if (bytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu())
    std::memcpy(dst, src, bytes);
  else
    detail::cuda_memcpy(dst, dst_device, src, src_device, bytes);
}

}  // namespace loom
