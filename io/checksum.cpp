#include "io/checksum.h"

#include <zlib.h>

#include <algorithm>

namespace loom {

uint32_t crc32_update(uint32_t crc, const void* data, size_t bytes) {
  // zlib takes a uInt length: feed it pieces of at most 1 GiB.
  constexpr size_t kPiece = size_t{1} << 30;
  const auto* p = static_cast<const Bytef*>(data);
  uLong c = crc;
  while (bytes > 0) {
    size_t n = std::min(bytes, kPiece);
    c = crc32(c, p, static_cast<uInt>(n));
    p += n;
    bytes -= n;
  }
  return static_cast<uint32_t>(c);
}

uint32_t crc32_combine_parts(uint32_t crc_a, uint32_t crc_b, uint64_t bytes_b) {
  return static_cast<uint32_t>(crc32_combine(crc_a, crc_b, static_cast<z_off_t>(bytes_b)));
}

}  // namespace loom
