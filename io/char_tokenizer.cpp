#include "io/char_tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/token_fingerprint.h"
#include "io/unicode_class.h"

namespace loom {
namespace {

constexpr std::string_view kHeader = "loom-char-vocab 1";

bool is_scalar_value(uint32_t cp) {
  return cp <= unicode::kMaxCodePoint && !(cp >= 0xD800 && cp <= 0xDFFF);
}

// Calls fn(code point, byte position) for each character of text under opt's policy.
template <typename Fn>
void for_each_code_point(std::string_view text, const CharEncodeOptions& opt, Fn&& fn) {
  if (opt.invalid_utf8 == InvalidUtf8::kKeepBytes)
    throw ConfigError("the character tokenizer cannot keep invalid UTF-8 bytes (" +
                      std::string(opt.source) + "); choose error or replace");
  std::string scratch;
  std::string_view valid =
      apply_utf8_policy(text, opt.invalid_utf8, opt.source, opt.source_offset, scratch);
  const auto* begin = reinterpret_cast<const unsigned char*>(valid.data());
  const auto* end = begin + valid.size();
  for (const unsigned char* p = begin; p < end;) {
    unicode::Utf8Char c = unicode::decode_utf8(p, end);
    fn(c.cp, static_cast<size_t>(p - begin));
    p += c.len;
  }
}

std::string hex(uint32_t cp) {
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%04X", cp);
  return buf;
}

}  // namespace

std::vector<uint32_t> distinct_code_points(std::string_view text, const CharEncodeOptions& opt) {
  std::vector<uint8_t> seen(unicode::kMaxCodePoint + 1, 0);
  for_each_code_point(text, opt, [&](uint32_t cp, size_t) {
    if (cp <= unicode::kMaxCodePoint) seen[cp] = 1;   // always: the text is valid here
  });
  std::vector<uint32_t> out;
  for (uint32_t cp = 0; cp <= unicode::kMaxCodePoint; ++cp)
    if (seen[cp]) out.push_back(cp);
  return out;
}

std::vector<uint32_t> merge_code_points(std::span<const uint32_t> a, std::span<const uint32_t> b) {
  std::vector<uint32_t> out;
  std::set_union(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

CharTokenizer::CharTokenizer(std::vector<uint32_t> code_points)
    : code_points_(std::move(code_points)) {
  Fingerprint f("loom-char-v1");
  f.add_u64(code_points_.size());
  for (size_t i = 0; i < code_points_.size(); ++i) {
    const uint32_t cp = code_points_[i];
    LOOM_CHECK(is_scalar_value(cp), DataError,
               "character vocabulary: entry " + std::to_string(i) + " (U+" + hex(cp) +
                   ") is not a Unicode scalar value");
    LOOM_CHECK(i == 0 || code_points_[i - 1] < cp, DataError,
               "character vocabulary: entry " + std::to_string(i) + " (U+" + hex(cp) +
                   ") is not above the one before; code points must be sorted and distinct");
    f.add_u64(cp);
  }
  fingerprint_ = f.value();
  id_of_.assign(code_points_.empty() ? 0 : code_points_.back() + 1, -1);
  for (size_t i = 0; i < code_points_.size(); ++i)
    id_of_[code_points_[i]] = static_cast<int32_t>(i);
}

CharTokenizer CharTokenizer::from_text(std::string_view text, const CharEncodeOptions& opt) {
  return CharTokenizer(distinct_code_points(text, opt));
}

std::string CharTokenizer::format() const {
  std::string out = std::string(kHeader) + "\nsize " + std::to_string(code_points_.size()) + "\n";
  const unicode::ClassTable& classes = unicode::ClassTable::get();
  for (uint32_t cp : code_points_) {
    out += hex(cp);
    const bool visible = cp > 0x20 && !(cp >= 0x7F && cp <= 0x9F) &&
                         classes(cp) != unicode::CharClass::kSpace;
    if (visible) {
      char buf[4];
      out.push_back('\t');
      out.append(buf, unicode::encode_utf8(cp, buf));
    }
    out.push_back('\n');
  }
  return out;
}

void CharTokenizer::save(const std::string& path) const { write_file_atomically(path, format()); }

CharTokenizer CharTokenizer::load(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open the character vocabulary");
  std::string line;
  size_t line_no = 1;
  auto where = [&] { return path + ":" + std::to_string(line_no) + ": "; };
  if (!std::getline(in, line) || line != kHeader)
    throw DataError(where() + "not a loom character vocabulary (expected \"" +
                    std::string(kHeader) + "\")");
  ++line_no;
  unsigned long long size = 0;
  if (!std::getline(in, line) || std::sscanf(line.c_str(), "size %llu", &size) != 1)
    throw DataError(where() + "expected \"size N\"");
  std::vector<uint32_t> cps;
  while (std::getline(in, line)) {
    ++line_no;
    const std::string digits = line.substr(0, line.find('\t'));
    char* end = nullptr;
    const unsigned long v = std::strtoul(digits.c_str(), &end, 16);
    if (digits.size() < 4 || digits.size() > 6 || *end != '\0' || !is_scalar_value(v))
      throw DataError(where() + "expected a code point in hex, got \"" + digits + "\"");
    if (!cps.empty() && cps.back() >= v)
      throw DataError(where() + digits + " is not above the line before (sorted, distinct)");
    cps.push_back(static_cast<uint32_t>(v));
  }
  if (cps.size() != size)
    throw DataError(path + ": says size " + std::to_string(size) + " but lists " +
                    std::to_string(cps.size()) + " code points (truncated?)");
  return CharTokenizer(std::move(cps));
}

void CharTokenizer::encode_append(std::string_view text, std::vector<uint32_t>& out,
                                  const CharEncodeOptions& opt) const {
  for_each_code_point(text, opt, [&](uint32_t cp, size_t pos) {
    const int32_t id = cp < id_of_.size() ? id_of_[cp] : -1;
    if (id < 0)
      throw DataError(std::string(opt.source) + ": byte " +
                      std::to_string(opt.source_offset + pos) + ": U+" + hex(cp) +
                      " is not in the character vocabulary (" +
                      std::to_string(code_points_.size()) + " code points)");
    out.push_back(static_cast<uint32_t>(id));
  });
}

std::vector<uint32_t> CharTokenizer::encode(std::string_view text,
                                            const CharEncodeOptions& opt) const {
  std::vector<uint32_t> out;
  out.reserve(text.size());
  encode_append(text, out, opt);
  return out;
}

std::string CharTokenizer::decode(std::span<const uint32_t> ids) const {
  std::string out;
  out.reserve(ids.size());
  char buf[4];
  for (size_t i = 0; i < ids.size(); ++i) {
    LOOM_CHECK(ids[i] < code_points_.size(), DataError,
               "decode: id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                   " is outside the character vocabulary (" +
                   std::to_string(code_points_.size()) + " code points)");
    out.append(buf, unicode::encode_utf8(code_points_[ids[i]], buf));
  }
  return out;
}

}  // namespace loom
