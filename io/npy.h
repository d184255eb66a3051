#pragma once
// NumPy's .npy files (format 1.0): the magic "\x93NUMPY", version 1.0, a little-endian
// uint16 header length, a Python-literal header {'descr', 'fortran_order', 'shape'} padded
// with spaces to a 64-byte boundary and ended by '\n', then the data, C order. What
// numpy.load reads without any option; loom writes its output weights this way for
// Python tools (`loom export --format word2vec-full`). Written to PATH.tmp, fsynced,
// renamed; IoError naming the path on failure.
#include <cstdint>
#include <string>
#include <vector>

namespace loom {

// A (rows, cols) float32 matrix, row-major.
void write_npy_f32(const std::string& path, const float* data, int64_t rows, int64_t cols);

}  // namespace loom
