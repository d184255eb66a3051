// crc32_update against zlib's crc32 (the reference: Python's zlib.crc32 gives the same)
// on every length and alignment up to 1 KiB, on a large buffer, in pieces, and on the
// standard check string.
#include <gtest/gtest.h>
#include <zlib.h>

#include <cstdint>
#include <random>
#include <vector>

#include "io/checksum.h"

namespace loom {
namespace {

std::vector<uint8_t> random_bytes(size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::vector<uint8_t> v(n);
  for (auto& b : v) b = static_cast<uint8_t>(gen());
  return v;
}

uint32_t reference(uint32_t crc, const uint8_t* p, size_t n) {
  return static_cast<uint32_t>(crc32(crc, p, static_cast<uInt>(n)));
}

TEST(Checksum, CheckString) {
  const char* s = "123456789";
  EXPECT_EQ(crc32_update(0, s, 9), 0xCBF43926u);
  std::vector<uint8_t> check(64 * 3 + 9);
  for (size_t i = 0; i < check.size(); ++i) check[i] = static_cast<uint8_t>('1' + i % 9);
  EXPECT_EQ(crc32_update(0, check.data(), check.size()), reference(0, check.data(), check.size()));
}

TEST(Checksum, EveryLengthAndAlignmentUpTo1KiB) {
  const std::vector<uint8_t> buf = random_bytes(1024 + 16, 7);
  for (size_t align = 0; align < 16; ++align)
    for (size_t n = 0; n <= 1024; ++n) {
      const uint32_t seed = static_cast<uint32_t>(n * 2654435761u);
      ASSERT_EQ(crc32_update(seed, buf.data() + align, n), reference(seed, buf.data() + align, n))
          << "length " << n << ", alignment " << align;
    }
}

TEST(Checksum, LargeBufferWholeAndInPieces) {
  const std::vector<uint8_t> buf = random_bytes((size_t{64} << 20) + 13, 11);
  const uint32_t whole = reference(0, buf.data(), buf.size());
  EXPECT_EQ(crc32_update(0, buf.data(), buf.size()), whole);
  EXPECT_EQ(crc32_of(buf.data(), buf.size()), whole);   // two halves on two threads
  EXPECT_EQ(crc32_of(buf.data(), 1000), reference(0, buf.data(), 1000));
  uint32_t c = 0;
  size_t at = 0;
  for (size_t piece : {size_t{1}, size_t{63}, size_t{64}, size_t{1000003}, size_t{17} << 20}) {
    c = crc32_update(c, buf.data() + at, piece);
    at += piece;
  }
  c = crc32_update(c, buf.data() + at, buf.size() - at);
  EXPECT_EQ(c, whole);
  const size_t half = buf.size() / 2 + 5;
  EXPECT_EQ(crc32_combine_parts(crc32_update(0, buf.data(), half), crc32_update(0, buf.data() + half, buf.size() - half),
                                buf.size() - half),
            whole);
}

TEST(Checksum, AllZerosAndAllOnes) {
  for (uint8_t fill : {uint8_t{0}, uint8_t{0xff}}) {
    std::vector<uint8_t> buf(4096 + 7, fill);
    EXPECT_EQ(crc32_update(0, buf.data(), buf.size()), reference(0, buf.data(), buf.size())) << int{fill};
  }
}

}  // namespace
}  // namespace loom
