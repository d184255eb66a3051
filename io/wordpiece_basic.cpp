#include "io/wordpiece_basic.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace loom {
namespace {

using unicode::BertClass;

constexpr uint32_t kHangulFirst = 0xAC00, kHangulLast = 0xD7A3;

// Hangul syllable -> its conjoining jamo (NFD, Unicode's algorithm; jamo are not Mn).
std::string hangul_nfd(uint32_t cp) {
  const uint32_t s = cp - kHangulFirst;
  const uint32_t l = 0x1100 + s / 588, v = 0x1161 + (s % 588) / 28, t = 0x11A7 + s % 28;
  std::string out;
  char buf[4];
  for (uint32_t j : {l, v, t}) {
    if (j == 0x11A7) continue;   // no final consonant
    out.append(buf, unicode::encode_utf8(j, buf));
  }
  return out;
}

const char* find_map(const unicode::CodePointMap* table, size_t n, uint32_t cp) {
  const unicode::CodePointMap* end = table + n;
  const unicode::CodePointMap* it = std::lower_bound(
      table, end, cp, [](const unicode::CodePointMap& m, uint32_t c) { return m.cp < c; });
  return it != end && it->cp == cp ? it->utf8 : nullptr;
}

// lower(each character of s) as UTF-8.
std::string lower_all(std::string_view s) {
  std::string out;
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const auto* e = p + s.size();
  while (p < e) {
    const unicode::Utf8Char c = unicode::decode_utf8(p, e);
    const char* low = find_map(unicode::kLowerMaps, unicode::kLowerMapsCount, c.cp);
    if (low) out += low;
    else out.append(reinterpret_cast<const char*>(p), c.len);
    p += c.len;
  }
  return out;
}

}  // namespace

BertBasicTokenizer::BertBasicTokenizer(const WordPieceOptions& opt) : chinese_(opt.tokenize_chinese_chars) {
  // Every code point's class, the mapped ones flagged, folded into blocks as ClassTable does.
  std::vector<uint8_t> all(unicode::kMaxCodePoint + 1, static_cast<uint8_t>(BertClass::kOther));
  for (size_t r = 0; r < unicode::kBertClassRangeCount; ++r) {
    const unicode::BertClassRange& range = unicode::kBertClassRanges[r];
    for (uint32_t cp = range.first; cp <= range.last; ++cp) all[cp] = static_cast<uint8_t>(range.cls);
  }
  auto add_map = [&](uint32_t cp, std::string out) {
    const auto cls = static_cast<BertClass>(all[cp]);
    if (cls == BertClass::kRemove || cls == BertClass::kSpace) return;
    char buf[4];
    if (out == std::string_view(buf, unicode::encode_utf8(cp, buf))) return;
    mapped_[cp] = std::move(out);
    all[cp] |= kMapped;
  };
  if (opt.strips()) {
    for (size_t i = 0; i < unicode::kStripAccentMapsCount; ++i) {
      const unicode::CodePointMap& m = unicode::kStripAccentMaps[i];
      add_map(m.cp, opt.lowercase ? lower_all(m.utf8) : std::string(m.utf8));
    }
    for (uint32_t cp = kHangulFirst; cp <= kHangulLast; ++cp) add_map(cp, hangul_nfd(cp));
  }
  if (opt.lowercase) {
    for (size_t i = 0; i < unicode::kLowerMapsCount; ++i) {
      const unicode::CodePointMap& m = unicode::kLowerMaps[i];
      if (!(all[m.cp] & kMapped)) add_map(m.cp, m.utf8);   // else strip + lower is there
    }
  }
  for (uint32_t b = 0; b < 128; ++b) {
    const uint8_t c = all[b];
    const auto cls = static_cast<BertClass>(c & 0x7F);
    ascii_byte_[b] = static_cast<char>(b);
    if (c & kMapped) ascii_byte_[b] = mapped_[b][0];   // only A-Z map, to one ASCII byte
    ascii_action_[b] = cls == BertClass::kRemove  ? kDrop
                       : cls == BertClass::kSpace ? kBreak
                       : cls == BertClass::kPunct ? kAlone
                                                  : kJoin;
  }
  for (size_t blk = 0; blk < std::size(block_); ++blk) {
    const uint8_t* block = all.data() + (blk << 8);
    bool uniform = true;
    for (size_t i = 1; i < 256 && uniform; ++i) uniform = block[i] == block[0];
    if (uniform) {
      block_[blk] = static_cast<uint16_t>(kUniform | block[0]);
      continue;
    }
    size_t leaf = leaves_.size() >> 8;
    for (size_t l = 0; l < leaves_.size() >> 8; ++l)
      if (std::memcmp(leaves_.data() + (l << 8), block, 256) == 0) { leaf = l; break; }
    if (leaf == leaves_.size() >> 8) leaves_.append(reinterpret_cast<const char*>(block), 256);
    block_[blk] = static_cast<uint16_t>(leaf);
  }
}

}  // namespace loom
