#pragma once
// Fast code point class lookup (letter / number / white space / other, see
// io/unicode_tables.h) and a UTF-8 decoder that reports invalid sequences instead of
// throwing, for the tokenizers.
//
// Lookup is two-level: 256-code-point blocks that are all one class answer from the block
// index; mixed blocks point at a 256-byte leaf. The table is built once from the
// generated ranges on first use (thread-safe) and is read-only afterwards.
#include <cstddef>
#include <cstdint>

#include "io/unicode_tables.h"

namespace loom::unicode {

inline constexpr uint32_t kMaxCodePoint = 0x10FFFF;
inline constexpr uint32_t kInvalidCodePoint = 0xFFFFFFFFu;

class ClassTable {
 public:
  // The process-wide table (built on the first call).
  static const ClassTable& get();

  CharClass operator()(uint32_t cp) const {
    if (cp < 0x80) return static_cast<CharClass>(ascii_[cp]);
    if (cp > kMaxCodePoint) return CharClass::kOther;
    uint16_t b = block_[cp >> 8];
    if (b & kUniform) return static_cast<CharClass>(b & 0xFF);
    return static_cast<CharClass>(leaves_[(size_t{b} << 8) | (cp & 0xFF)]);
  }

 private:
  static constexpr uint16_t kUniform = 0x8000;
  static constexpr size_t kBlocks = (kMaxCodePoint + 1) >> 8;   // 0x1100
  ClassTable();
  uint8_t ascii_[0x80];
  uint16_t block_[kBlocks];   // kUniform | class, or the index of a leaf
  uint8_t* leaves_;           // leaf count x 256 classes; owned, never freed (process-wide)
};

// Class of one code point (convenience; hot loops keep a ClassTable reference).
inline CharClass char_class(uint32_t cp) { return ClassTable::get()(cp); }

struct Utf8Char {
  uint32_t cp;    // the code point, or kInvalidCodePoint
  uint32_t len;   // bytes consumed: the sequence, or the maximal invalid subpart (1..3)
};

// Decodes the character at p (p < end) by RFC 3629 (no overlongs, surrogates or values
// above U+10FFFF). An invalid sequence yields kInvalidCodePoint and the length of its
// maximal subpart (Unicode's recommended practice for U+FFFD substitution, which Python's
// bytes.decode(errors="replace") follows too).
inline Utf8Char decode_utf8(const unsigned char* p, const unsigned char* end) {
  const unsigned char c = p[0];
  if (c < 0x80) return {c, 1};
  auto cont = [&](ptrdiff_t i) { return p + i < end && (p[i] & 0xC0) == 0x80; };
  if (c >= 0xC2 && c < 0xE0) {
    if (cont(1)) return {(uint32_t{c} & 0x1F) << 6 | (p[1] & 0x3Fu), 2};
    return {kInvalidCodePoint, 1};
  }
  if (c >= 0xE0 && c < 0xF0) {
    const unsigned char lo = c == 0xE0 ? 0xA0 : 0x80, hi = c == 0xED ? 0x9F : 0xBF;
    if (!(p + 1 < end && p[1] >= lo && p[1] <= hi)) return {kInvalidCodePoint, 1};
    if (!cont(2)) return {kInvalidCodePoint, 2};
    return {(uint32_t{c} & 0x0F) << 12 | (p[1] & 0x3Fu) << 6 | (p[2] & 0x3Fu), 3};
  }
  if (c >= 0xF0 && c < 0xF5) {
    const unsigned char lo = c == 0xF0 ? 0x90 : 0x80, hi = c == 0xF4 ? 0x8F : 0xBF;
    if (!(p + 1 < end && p[1] >= lo && p[1] <= hi)) return {kInvalidCodePoint, 1};
    if (!cont(2)) return {kInvalidCodePoint, 2};
    if (!cont(3)) return {kInvalidCodePoint, 3};
    return {(uint32_t{c} & 0x07) << 18 | (p[1] & 0x3Fu) << 12 | (p[2] & 0x3Fu) << 6 |
                (p[3] & 0x3Fu), 4};
  }
  return {kInvalidCodePoint, 1};
}

// Appends the UTF-8 form of cp (cp <= U+10FFFF, not a surrogate) to out; returns bytes.
size_t encode_utf8(uint32_t cp, char out[4]);

}  // namespace loom::unicode
