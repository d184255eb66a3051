#include "io/checksum.h"

#include <zlib.h>

#include <algorithm>
#include <thread>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace loom {
namespace {

// zlib takes a uInt length: feed it pieces of at most 1 GiB.
uint32_t zlib_crc32(uint32_t crc, const uint8_t* p, size_t bytes) {
  constexpr size_t kPiece = size_t{1} << 30;
  uLong c = crc;
  while (bytes > 0) {
    const size_t n = std::min(bytes, kPiece);
    c = crc32(c, p, static_cast<uInt>(n));
    p += n;
    bytes -= n;
  }
  return static_cast<uint32_t>(c);
}

#if defined(__x86_64__)
// Note [CRC-32 by carry-less multiplication]
// zlib's table-driven crc32 runs at ~1.2 GB/s here, which made the checksum a fifth of a
// 1 GB checkpoint write. This folds the data 64 bytes at a time with PCLMULQDQ (the
// method of Gopal et al., "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ
// Instruction", Intel 2009, for the bit-reflected polynomial 0x04C11DB7): four 128-bit
// accumulators, each multiplied by x^(512+-32) mod P and xored with the next block; then
// folded into one, down to 64 bits, and reduced to 32 by Barrett reduction. The constants
// are the powers of x modulo P (bit-reflected, shifted as the method needs); the result is
// zlib's value bit for bit (tests/io/test_checksum.cpp compares them on every length and
// alignment up to 1 KiB and on large buffers). Used where the CPU has PCLMULQDQ and SSE4.1.
__attribute__((target("pclmul,sse4.1"))) uint32_t fold_crc32(uint32_t state, const uint8_t* p, size_t bytes) {
  // bytes >= 64 and a multiple of 16; `state` is the CRC register (not inverted).
  const __m128i k1k2 = _mm_set_epi64x(0x1c6e41596, 0x154442bd4);
  const __m128i k3k4 = _mm_set_epi64x(0x0ccaa009e, 0x1751997d0);
  const __m128i k5 = _mm_set_epi64x(0, 0x163cd6124);
  const __m128i poly = _mm_set_epi64x(0x1f7011641, 0x1db710641);
  const __m128i mask32 = _mm_set_epi32(0, 0, 0, -1);
  auto load = [](const uint8_t* q) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(q)); };
  auto fold = [](__m128i x, __m128i k, __m128i next) {
    return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11)), next);
  };
  __m128i x0 = _mm_xor_si128(load(p), _mm_cvtsi32_si128(static_cast<int>(state)));
  __m128i x1 = load(p + 16), x2 = load(p + 32), x3 = load(p + 48);
  p += 64;
  bytes -= 64;
  for (; bytes >= 64; p += 64, bytes -= 64) {
    x0 = fold(x0, k1k2, load(p));
    x1 = fold(x1, k1k2, load(p + 16));
    x2 = fold(x2, k1k2, load(p + 32));
    x3 = fold(x3, k1k2, load(p + 48));
  }
  x0 = fold(x0, k3k4, x1);
  x0 = fold(x0, k3k4, x2);
  x0 = fold(x0, k3k4, x3);
  for (; bytes >= 16; p += 16, bytes -= 16) x0 = fold(x0, k3k4, load(p));
  // 128 -> 64 bits (appending 32 zero bits), then 64 -> 32 by Barrett reduction.
  __m128i x = _mm_xor_si128(_mm_clmulepi64_si128(x0, k3k4, 0x10), _mm_srli_si128(x0, 8));
  x = _mm_xor_si128(_mm_clmulepi64_si128(_mm_and_si128(x, mask32), k5, 0x00), _mm_srli_si128(x, 4));
  __m128i t = _mm_clmulepi64_si128(_mm_and_si128(x, mask32), poly, 0x10);
  t = _mm_clmulepi64_si128(_mm_and_si128(t, mask32), poly, 0x00);
  return static_cast<uint32_t>(_mm_extract_epi32(_mm_xor_si128(x, t), 1));
}

bool have_clmul() {
  static const bool yes = __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
  return yes;
}
#endif

}  // namespace

uint32_t crc32_update(uint32_t crc, const void* data, size_t bytes) {
  const auto* p = static_cast<const uint8_t*>(data);
#if defined(__x86_64__)
  if (bytes >= 64 && have_clmul()) {
    const size_t body = bytes & ~size_t{15};
    crc = ~fold_crc32(~crc, p, body);
    p += body;
    bytes -= body;
  }
#endif
  return zlib_crc32(crc, p, bytes);
}

uint32_t crc32_combine_parts(uint32_t crc_a, uint32_t crc_b, uint64_t bytes_b) {
  return static_cast<uint32_t>(crc32_combine(crc_a, crc_b, static_cast<z_off_t>(bytes_b)));
}

uint32_t crc32_of(const void* data, size_t bytes) {
  constexpr size_t kSplitFrom = size_t{8} << 20;
  if (bytes < kSplitFrom) return crc32_update(0, data, bytes);
  const size_t half = bytes / 2;
  const auto* p = static_cast<const uint8_t*>(data);
  uint32_t first = 0;
  std::thread helper([&] { first = crc32_update(0, p, half); });
  const uint32_t second = crc32_update(0, p + half, bytes - half);
  helper.join();
  return crc32_combine_parts(first, second, bytes - half);
}

uint32_t crc32_of_strings(const std::vector<std::string>& strings) {
  uint32_t crc = 0;
  for (const std::string& s : strings) crc = crc32_update(crc, s.c_str(), s.size() + 1);   // with the NUL
  return crc;
}

}  // namespace loom
