#pragma once
// GPT-2's pre-tokenization, written out by hand (no regex engine). GPT-2 splits text into
// pieces with the pattern
//
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
//
// tried leftmost-first at each position, greedily. Byte-level BPE then runs on each piece
// alone. Spelled out, at position p:
//   1. an apostrophe followed by s, t, m, d, re, ve or ll (lower case only) is a piece;
//   2. an optional U+0020 space, then a maximal run of letters (L*), or of numbers (N*), or
//      of "other" characters (neither white space, letter nor number);
//   3. a run of white space that ends the text is one piece; a run followed by a
//      non-space character gives up its last character (which then starts the next piece,
//      so " word" keeps its space) unless the run is that one character.
// Letters, numbers and white space are classified by io/unicode_tables.h (Oniguruma's \s
// for white space, as Hugging Face `tokenizers` uses). Pieces tile the input exactly.
//
// Invalid UTF-8: the pre-tokenizer treats a maximal invalid subpart as one "other"
// character; callers choose a policy (InvalidUtf8) before pieces reach it.
#include <cstdint>
#include <string>
#include <string_view>

#include "io/unicode_class.h"

namespace loom {

// What the tokenizers do with bytes that are not valid UTF-8.
enum class InvalidUtf8 : uint8_t {
  kError,      // loom::DataError naming the byte offset (the default)
  kReplace,    // each maximal invalid subpart becomes U+FFFD, as Python's errors="replace"
  kKeepBytes,  // each maximal invalid subpart is kept as raw bytes (an "other" character):
               // decode(encode(x)) == x for any bytes x
};

// Applies `policy` to text: returns text itself when it is valid UTF-8 (or the policy keeps
// bytes), a copy in `scratch` with U+FFFD for each maximal invalid subpart (kReplace), or
// throws DataError "SOURCE: byte N: invalid UTF-8 (..)" with N = offset + position (kError).
std::string_view apply_utf8_policy(std::string_view text, InvalidUtf8 policy,
                                   std::string_view source, uint64_t offset,
                                   std::string& scratch);

class Gpt2PreTokenizer {
 public:
  explicit Gpt2PreTokenizer(std::string_view text)
      : classes_(unicode::ClassTable::get()),
        p_(reinterpret_cast<const unsigned char*>(text.data())),
        end_(p_ + text.size()) {}

  // The next piece in `piece`; false when the text is used up.
  bool next(std::string_view& piece);

 private:
  struct CharAt {
    unicode::CharClass cls;
    uint32_t len;
  };
  CharAt char_at(const unsigned char* p) const {
    if (*p < 0x80) return {classes_(*p), 1};
    unicode::Utf8Char c = unicode::decode_utf8(p, end_);
    if (c.cp == unicode::kInvalidCodePoint) return {unicode::CharClass::kOther, c.len};
    return {classes_(c.cp), c.len};
  }
  // End of the maximal run of `cls` characters starting at p; *last = start of its last.
  const unsigned char* scan_run(const unsigned char* p, unicode::CharClass cls,
                                const unsigned char** last) const;
  // Bytes after an apostrophe at p that complete a contraction (1 or 2), or 0.
  uint32_t contraction_tail(const unsigned char* p) const;

  const unicode::ClassTable& classes_;
  const unsigned char* p_;
  const unsigned char* end_;
};

}  // namespace loom
