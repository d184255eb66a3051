#include "io/bpe_pretokenize.h"

#include <cstdio>

#include "core/error.h"
#include "io/utf8.h"

namespace loom {

std::string_view apply_utf8_policy(std::string_view text, InvalidUtf8 policy,
                                   std::string_view source, uint64_t offset,
                                   std::string& scratch) {
  if (policy == InvalidUtf8::kKeepBytes) return text;
  const size_t bad = utf8::first_invalid(text);
  if (bad == text.size()) return text;
  if (policy == InvalidUtf8::kError) {
    std::string bytes;
    for (size_t i = bad; i < text.size() && i < bad + 4; ++i) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "%s%02X", i == bad ? "" : " ",
                    static_cast<unsigned char>(text[i]));
      bytes += buf;
    }
    throw DataError(std::string(source) + ": byte " + std::to_string(offset + bad) +
                    ": invalid UTF-8 (" + bytes + "); the tokenizer accepts it only when told "
                    "to replace it (U+FFFD) or to keep the bytes");
  }
  scratch.assign(text.substr(0, bad));
  const auto* p = reinterpret_cast<const unsigned char*>(text.data()) + bad;
  const auto* end = reinterpret_cast<const unsigned char*>(text.data()) + text.size();
  while (p < end) {
    unicode::Utf8Char c = unicode::decode_utf8(p, end);
    if (c.cp == unicode::kInvalidCodePoint)
      scratch += utf8::kReplacement;
    else
      scratch.append(reinterpret_cast<const char*>(p), c.len);
    p += c.len;
  }
  return scratch;
}

using unicode::CharClass;

const unsigned char* Gpt2PreTokenizer::scan_run(const unsigned char* p, CharClass cls,
                                                const unsigned char** last) const {
  *last = p;
  while (p < end_) {
    CharAt c = char_at(p);
    if (c.cls != cls) break;
    *last = p;
    p += c.len;
  }
  return p;
}

uint32_t Gpt2PreTokenizer::contraction_tail(const unsigned char* p) const {
  const unsigned char* q = p + 1;   // p points at the apostrophe
  if (q >= end_) return 0;
  if (*q == 's' || *q == 't' || *q == 'm' || *q == 'd') return 1;
  if (q + 1 >= end_) return 0;
  if ((q[0] == 'r' && q[1] == 'e') || (q[0] == 'v' && q[1] == 'e') ||
      (q[0] == 'l' && q[1] == 'l'))
    return 2;
  return 0;
}

bool Gpt2PreTokenizer::next(std::string_view& piece) {
  if (p_ >= end_) return false;
  const unsigned char* start = p_;
  const unsigned char* last = nullptr;
  if (*p_ == '\'') {
    if (uint32_t tail = contraction_tail(p_)) {
      p_ += 1 + tail;
      piece = std::string_view(reinterpret_cast<const char*>(start), p_ - start);
      return true;
    }
  }
  CharAt c = char_at(p_);
  if (*p_ == ' ' && p_ + 1 < end_) {
    // " ?X+" for X in letters, numbers, other: the space joins a following non-space run.
    CharAt n = char_at(p_ + 1);
    if (n.cls != CharClass::kSpace) {
      p_ = scan_run(p_ + 1, n.cls, &last);
      piece = std::string_view(reinterpret_cast<const char*>(start), p_ - start);
      return true;
    }
  }
  if (c.cls == CharClass::kSpace) {
    // \s+(?!\S) then \s+: a run before a non-space leaves its last character behind.
    const unsigned char* run_end = scan_run(p_, CharClass::kSpace, &last);
    p_ = (run_end < end_ && last > start) ? last : run_end;
  } else {
    p_ = scan_run(p_, c.cls, &last);
  }
  piece = std::string_view(reinterpret_cast<const char*>(start), p_ - start);
  return true;
}

}  // namespace loom
