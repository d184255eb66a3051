// NumPy .npy files (npy.h).
#include "io/npy.h"

#include <bit>

#include "core/error.h"
#include "io/atomic_file.h"

namespace loom {

static_assert(std::endian::native == std::endian::little, "'<f4' data is written as it lies in memory");

void write_npy_f32(const std::string& path, const float* data, int64_t rows, int64_t cols) {
  LOOM_CHECK(rows >= 0 && cols >= 0, DataError, path + ": a matrix of negative shape");
  std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': (" + std::to_string(rows) + ", " +
                       std::to_string(cols) + "), }";
  // magic (6) + version (2) + length (2) + header + '\n' is a multiple of 64.
  const size_t unpadded = 10 + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string head = std::string("\x93NUMPY\x01\x00", 8);
  head += static_cast<char>(header.size() & 0xff);
  head += static_cast<char>((header.size() >> 8) & 0xff);
  head += header;
  AtomicFile out(path);
  out.write(head.data(), head.size());
  out.write(data, static_cast<size_t>(rows) * static_cast<size_t>(cols) * sizeof(float));
  out.commit();
}

}  // namespace loom
