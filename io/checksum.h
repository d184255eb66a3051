#pragma once
// CRC-32 (zlib's polynomial, the value `zlib.crc32` and `binascii.crc32` give in Python)
// over byte ranges of any length, and the combination of two adjacent ranges' CRCs.
// Checkpoint datasets store the CRC of their logical array (row-major, little-endian
// elements), so the value does not depend on how ranks split the writing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace loom {

// CRC-32 of `bytes` bytes at `data`, continuing from `crc` (0 to start).
uint32_t crc32_update(uint32_t crc, const void* data, size_t bytes);
// CRC of A||B from crc(A), crc(B) and the length of B.
uint32_t crc32_combine_parts(uint32_t crc_a, uint32_t crc_b, uint64_t bytes_b);
// crc32_update(0, data, bytes), with arrays of 8 MiB and more split in two halves, one on a
// helper thread, and combined: for whole checkpoint datasets, written and verified between
// steps when the training threads are idle (~0.09 s per GB instead of ~0.17 s).
uint32_t crc32_of(const void* data, size_t bytes);

// Note [CRC of string datasets]
// A dataset of variable-length strings (/vocab/tokens of checkpoints, vocab.h5 and the
// co-occurrence partitions) has no byte array of its own in the file, so its crc32
// attribute is defined over the strings as C strings: each string's UTF-8 bytes followed by
// its terminating NUL byte, in dataset order, as one CRC-32 (zlib's). In Python:
//   crc = 0
//   for t in tokens: crc = zlib.crc32(t.encode("utf-8") + b"\0", crc)
// The NUL keeps ["ab", "c"] and ["a", "bc"] apart. Numeric datasets use their row-major
// little-endian bytes (above).
uint32_t crc32_of_strings(const std::vector<std::string>& strings);

}  // namespace loom
