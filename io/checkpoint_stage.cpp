// Stager: Note [Staging device data] in io/checkpoint_stage.h.
#include "io/checkpoint_stage.h"

#include <algorithm>
#include <atomic>

#include "io/checkpoint_testing.h"
#include "io/checksum.h"

namespace loom {
namespace {

std::atomic<uint64_t> g_chunk{ckpt::kStageChunk};
std::atomic<bool> g_stage_host{false};

constexpr uint64_t kLargestElement = 8;   // bytes of the widest element a reader stages

}  // namespace

namespace detail {
void set_checkpoint_staging(uint64_t chunk_bytes, bool stage_host) {
  g_chunk = chunk_bytes == 0 ? ckpt::kStageChunk : chunk_bytes;
  g_stage_host = chunk_bytes != 0 && stage_host;
}
}  // namespace detail

namespace ckpt {

Stager::Stager(uint64_t largest)
    : largest_(largest), chunk_(g_chunk.load()), force_(g_stage_host.load()) {}

bool Stager::stages(Device device) const { return device.is_cuda() || force_; }

void Stager::allocate(Device device) {
  if (buffer_.data() != nullptr) return;
  const uint64_t bytes = std::max(std::min(chunk_, largest_), kLargestElement);
  // Pinned (page-locked) memory only where the data is on a device: it needs the CUDA
  // runtime, which a forced stage of host data on a machine without a GPU does not have.
  buffer_ = Buffer(static_cast<size_t>(bytes), Device::cpu(), /*pinned=*/device.is_cuda());
}

const void* Stager::down(const void* src, Device device, uint64_t n) {
  if (!stages(device)) return src;
  allocate(device);
  LOOM_ASSERT(n <= buffer_.size(), "Stager::down: piece larger than the staging buffer");
  copy_bytes(buffer_.data(), Device::cpu(), src, device, static_cast<size_t>(n));
  return buffer_.data();
}

void* Stager::host(Device device) {
  allocate(device);
  return buffer_.data();
}

void Stager::up(void* dst, Device device, uint64_t n) {
  LOOM_ASSERT(buffer_.data() != nullptr && n <= buffer_.size(), "Stager::up: nothing staged or too many bytes");
  copy_bytes(dst, device, buffer_.data(), Device::cpu(), static_cast<size_t>(n));
}

uint32_t Stager::crc(const void* src, Device device, uint64_t bytes) {
  if (!stages(device)) return crc32_of(src, static_cast<size_t>(bytes));
  uint32_t crc = 0;
  for (uint64_t done = 0; done < bytes;) {
    const uint64_t n = std::min(bytes - done, chunk_);
    const void* piece = down(static_cast<const uint8_t*>(src) + done, device, n);
    // crc32_of splits large pieces over two threads; the pieces combine in file order.
    const uint32_t part = crc32_of(piece, static_cast<size_t>(n));
    crc = done == 0 ? part : crc32_combine_parts(crc, part, n);
    done += n;
  }
  return crc;
}

}  // namespace ckpt
}  // namespace loom
