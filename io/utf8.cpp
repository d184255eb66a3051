#include "io/utf8.h"

namespace loom::utf8 {
namespace {

inline bool is_cont(unsigned char c) { return (c & 0xC0) == 0x80; }

// Length of the valid sequence at text[pos], or 0 if it is invalid.
size_t valid_length(std::string_view text, size_t pos) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size();
  unsigned char c = s[pos];
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0;                       // continuation byte or overlong 2-byte lead
  if (c < 0xE0) return (pos + 1 < n && is_cont(s[pos + 1])) ? 2 : 0;
  if (c < 0xF0) {
    if (pos + 2 >= n || !is_cont(s[pos + 1]) || !is_cont(s[pos + 2])) return 0;
    if (c == 0xE0 && s[pos + 1] < 0xA0) return 0;   // overlong
    if (c == 0xED && s[pos + 1] >= 0xA0) return 0;  // surrogates
    return 3;
  }
  if (c < 0xF5) {
    if (pos + 3 >= n || !is_cont(s[pos + 1]) || !is_cont(s[pos + 2]) || !is_cont(s[pos + 3]))
      return 0;
    if (c == 0xF0 && s[pos + 1] < 0x90) return 0;   // overlong
    if (c == 0xF4 && s[pos + 1] >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

}  // namespace

size_t first_invalid(std::string_view text) {
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  size_t n = text.size();
  size_t pos = 0;
  while (pos < n) {
    // ASCII fast path, eight bytes at a time.
    while (pos + 8 <= n) {
      uint64_t word;
      __builtin_memcpy(&word, s + pos, 8);
      if (word & 0x8080808080808080ULL) break;
      pos += 8;
    }
    if (pos >= n) break;
    if (s[pos] < 0x80) { ++pos; continue; }
    size_t len = valid_length(text, pos);
    if (len == 0) return pos;
    pos += len;
  }
  return n;
}

size_t invalid_length(std::string_view text, size_t pos) {
  size_t len = 1;
  while (len < 3 && pos + len < text.size() &&
         is_cont(static_cast<unsigned char>(text[pos + len])) &&
         static_cast<unsigned char>(text[pos]) >= 0xC2 &&
         static_cast<unsigned char>(text[pos]) < 0xF5)
    ++len;
  return len;
}

uint32_t to_lower(uint32_t cp) {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
  if (cp >= 0xC0 && cp <= 0xDE && cp != 0xD7) return cp + 32;            // Latin-1
  if (cp >= 0x100 && cp <= 0x137) return cp | 1;                         // Latin Ext-A pairs
  if (cp >= 0x139 && cp <= 0x148) return (cp & 1) ? cp + 1 : cp;
  if (cp >= 0x14A && cp <= 0x177) return cp | 1;
  if (cp == 0x178) return 0xFF;
  if (cp >= 0x179 && cp <= 0x17E) return (cp & 1) ? cp + 1 : cp;
  if (cp >= 0x391 && cp <= 0x3AB && cp != 0x3A2) return cp + 32;         // Greek
  if (cp >= 0x400 && cp <= 0x40F) return cp + 80;                        // Cyrillic
  if (cp >= 0x410 && cp <= 0x42F) return cp + 32;
  if (cp >= 0x460 && cp <= 0x4FF && cp != 0x482 && !(cp >= 0x483 && cp <= 0x489) &&
      cp != 0x4C0 && !(cp >= 0x4C1 && cp <= 0x4CE))
    return cp | 1;
  if (cp >= 0x531 && cp <= 0x556) return cp + 48;                        // Armenian
  if (cp >= 0x1E00 && cp <= 0x1E95) return cp | 1;                       // Latin Ext Additional
  if (cp >= 0x1EA0 && cp <= 0x1EFF) return cp | 1;
  return cp;
}

void lowercase_inplace(char* data, size_t size) {
  auto* s = reinterpret_cast<unsigned char*>(data);
  size_t pos = 0;
  while (pos < size) {
    unsigned char c = s[pos];
    if (c < 0x80) {
      if (c >= 'A' && c <= 'Z') s[pos] = static_cast<unsigned char>(c + 32);
      ++pos;
    } else if (c >= 0xC0 && c < 0xE0 && pos + 1 < size) {   // only 2-byte forms change here
      uint32_t cp = ((c & 0x1Fu) << 6) | (s[pos + 1] & 0x3Fu);
      uint32_t low = to_lower(cp);
      if (low != cp && low < 0x800) {
        s[pos] = static_cast<unsigned char>(0xC0 | (low >> 6));
        s[pos + 1] = static_cast<unsigned char>(0x80 | (low & 0x3F));
      }
      pos += 2;
    } else if (c >= 0xE0 && c < 0xF0 && pos + 2 < size) {
      uint32_t cp = ((c & 0x0Fu) << 12) | ((s[pos + 1] & 0x3Fu) << 6) | (s[pos + 2] & 0x3Fu);
      uint32_t low = to_lower(cp);
      if (low != cp && low >= 0x800) {
        s[pos] = static_cast<unsigned char>(0xE0 | (low >> 12));
        s[pos + 1] = static_cast<unsigned char>(0x80 | ((low >> 6) & 0x3F));
        s[pos + 2] = static_cast<unsigned char>(0x80 | (low & 0x3F));
      }
      pos += 3;
    } else {
      ++pos;
    }
  }
}

size_t truncate_at_boundary(std::string_view text, size_t limit) {
  if (limit >= text.size()) return text.size();
  size_t n = limit;
  while (n > 0 && is_cont(static_cast<unsigned char>(text[n]))) --n;
  return n;
}

}  // namespace loom::utf8
