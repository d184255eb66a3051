#pragma once
// UTF-8 checks and case mapping over byte spans, without allocation.
//
// validate_utf8 follows RFC 3629: no overlong forms, no surrogates, nothing above
// U+10FFFF. lowercase_utf8_inplace maps the simple (one-to-one) lower-case forms of Latin,
// Greek, Cyrillic and Armenian letters, whose lower-case forms have the same UTF-8 length
// as the capitals, so the text can be mapped in place; other code points are kept.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace loom::utf8 {

// Byte offset of the first invalid sequence in `text`, or text.size() when it is all valid.
size_t first_invalid(std::string_view text);

// Length in bytes of the invalid sequence starting at text[pos] (1..3): the bytes a
// decoder skips before it can resynchronise (a maximal subpart, as Unicode recommends).
size_t invalid_length(std::string_view text, size_t pos);

// The U+FFFD replacement character, as UTF-8.
inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";

// Lower-cases valid UTF-8 in place (see the header comment for what is mapped).
void lowercase_inplace(char* data, size_t size);

// The largest n <= limit such that text[0, n) does not end inside a multi-byte sequence.
size_t truncate_at_boundary(std::string_view text, size_t limit);

// Simple lower-case mapping of one code point (identity where none is defined here).
uint32_t to_lower(uint32_t cp);

}  // namespace loom::utf8
