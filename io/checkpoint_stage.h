#pragma once
// Internal to io/checkpoint_*.cpp: checkpoint data between where it lives (host or device
// memory) and the host bytes that checksums and file calls read, in bounded pieces.
//
// Note [Staging device data]
// Parameters and optimizer slots may live on a GPU (ParamStore::finalize(Device::cuda(i))),
// but the file calls (pwrite, MPI_File_write_at, H5Dread) and the CRC need host bytes. Such
// data goes through ONE host staging buffer per save or per reader, of at most chunk()
// bytes (kStageChunk, 64 MiB; pinned where the data is on a device, so the copies run at
// full link speed): a model of many GB needs no second full copy in host RAM. The CRC is
// computed on the staged host bytes, the very bytes that go to the file, so a checkpoint of
// device data holds the same data and checksums as one written from host memory. Saving
// copies device data down twice, once for the checksums (the layout carries them and is
// written before any data, Note [Layout, then bulk data] in checkpoint_write.cpp) and once
// for the data; device-to-host copies run at tens of GB/s, far above any disk. Loading
// reads a piece into the buffer, adds it to the CRC and copies it up; the CRC is compared
// when the array is complete (open() has already verified every checksum on the host).
// Host data is used in place, unless a test forces staging (detail::set_checkpoint_staging
// in io/checkpoint_testing.h) so that this path runs, in tiny pieces, without a GPU.
#include <cstdint>

#include "core/buffer.h"
#include "core/device.h"

namespace loom::ckpt {

inline constexpr uint64_t kStageChunk = uint64_t{64} << 20;   // bytes per staged piece

// Not thread-safe: one per save (per rank) or per reader.
class Stager {
 public:
  // `largest` bounds the bytes of one array that will be staged: the buffer, allocated at
  // the first staged piece, holds min(chunk(), largest) bytes (and at least one element).
  explicit Stager(uint64_t largest);

  // Whether data on `device` goes through the buffer (device memory, or anything when a
  // test forces staging).
  bool stages(Device device) const;
  // Bytes per staged piece (the test hook may make it tiny and odd).
  uint64_t chunk() const { return chunk_; }
  // Bytes per piece for data on `device`: chunk() when staged, else `direct`.
  uint64_t piece(Device device, uint64_t direct) const { return stages(device) ? chunk_ : direct; }

  // Host bytes of [src, src + n) on `device`: src itself when not staged, else a copy in
  // the buffer (valid until the next call). n <= piece(device, ...).
  const void* down(const void* src, Device device, uint64_t n);
  // The buffer, to be filled with up to max(chunk(), 8) bytes and copied up by up().
  void* host(Device device);
  // Copies the buffer's first n bytes to dst on `device`.
  void up(void* dst, Device device, uint64_t n);
  // CRC-32 of [src, src + bytes) on `device` (staged piece by piece when it is staged).
  uint32_t crc(const void* src, Device device, uint64_t bytes);

 private:
  void allocate(Device device);
  Buffer buffer_;
  uint64_t largest_ = 0;
  uint64_t chunk_ = kStageChunk;
  bool force_ = false;
};

}  // namespace loom::ckpt
