#include "io/unicode_class.h"

#include <cstring>
#include <vector>

namespace loom::unicode {

ClassTable::ClassTable() {
  // Every code point's class, then folded into uniform blocks and shared leaves.
  std::vector<uint8_t> all(kMaxCodePoint + 1, static_cast<uint8_t>(CharClass::kOther));
  for (size_t r = 0; r < kClassRangeCount; ++r)
    for (uint32_t cp = kClassRanges[r].first; cp <= kClassRanges[r].last; ++cp)
      all[cp] = static_cast<uint8_t>(kClassRanges[r].cls);
  std::memcpy(ascii_, all.data(), sizeof(ascii_));

  std::vector<uint8_t> leaves;   // (leaf count, 256)
  for (size_t b = 0; b < kBlocks; ++b) {
    const uint8_t* block = all.data() + (b << 8);
    bool uniform = true;
    for (size_t i = 1; i < 256 && uniform; ++i) uniform = block[i] == block[0];
    if (uniform) {
      block_[b] = static_cast<uint16_t>(kUniform | block[0]);
      continue;
    }
    // Identical mixed blocks share one leaf.
    size_t leaf = leaves.size() >> 8;
    for (size_t l = 0; l < leaves.size() >> 8; ++l)
      if (std::memcmp(leaves.data() + (l << 8), block, 256) == 0) { leaf = l; break; }
    if (leaf == leaves.size() >> 8) leaves.insert(leaves.end(), block, block + 256);
    block_[b] = static_cast<uint16_t>(leaf);
  }
  leaves_ = new uint8_t[leaves.size()];
  std::memcpy(leaves_, leaves.data(), leaves.size());
}

const ClassTable& ClassTable::get() {
  static const ClassTable* table = new ClassTable();   // process lifetime, never destroyed
  return *table;
}

size_t encode_utf8(uint32_t cp, char out[4]) {
  if (cp < 0x80) {
    out[0] = static_cast<char>(cp);
    return 1;
  }
  if (cp < 0x800) {
    out[0] = static_cast<char>(0xC0 | (cp >> 6));
    out[1] = static_cast<char>(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = static_cast<char>(0xE0 | (cp >> 12));
    out[1] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out[2] = static_cast<char>(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = static_cast<char>(0xF0 | (cp >> 18));
  out[1] = static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
  out[2] = static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
  out[3] = static_cast<char>(0x80 | (cp & 0x3F));
  return 4;
}

}  // namespace loom::unicode
