#pragma once
// Word tokenization for embedding corpora: tokens are maximal runs of non-whitespace bytes
// (space, \t, \n, \v, \f, \r: so CRLF files read like LF files); a line ends at '\n'.
// Lower-casing happens earlier, on the chunk (CorpusOptions::lowercase). Tokens are
// string_views into the chunk: no allocation per token.
#include <cstddef>
#include <string_view>

#include "io/utf8.h"

namespace loom {

inline bool is_space(char c) {
  return c == ' ' || c == '\n' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

// Calls on_token(std::string_view) for every token of `text` and on_line_end() after
// every '\n'. Tokens longer than max_token_bytes (0: no limit) are truncated at a UTF-8
// boundary. Chunks never split a token (CorpusShard), so chunks can be fed one by one.
template <typename OnToken, typename OnLineEnd>
void for_each_token(std::string_view text, size_t max_token_bytes, OnToken&& on_token,
                    OnLineEnd&& on_line_end) {
  const char* p = text.data();
  const char* end = p + text.size();
  while (p < end) {
    while (p < end && is_space(*p)) {
      if (*p == '\n') on_line_end();
      ++p;
    }
    const char* start = p;
    while (p < end && !is_space(*p)) ++p;
    if (p > start) {
      std::string_view token(start, static_cast<size_t>(p - start));
      if (max_token_bytes != 0 && token.size() > max_token_bytes)
        token = token.substr(0, utf8::truncate_at_boundary(token, max_token_bytes));
      if (!token.empty()) on_token(token);
    }
  }
}

}  // namespace loom
