#pragma once
// Character-level tokenizer for small experiments (nanoGPT's Shakespeare): the vocabulary
// is the set of distinct Unicode code points of a corpus, sorted; id = rank in that order.
//
// File format (UTF-8 text, self-describing):
//   loom-char-vocab 1          format name and version
//   size N                     number of code points
//   N lines "XXXX[\tc]"        the code points in increasing order as upper-case hex (4 to 6
//                              digits), optionally a tab and the character itself for a
//                              reader (omitted for white space and controls; ignored)
// The reader checks the header, the count, the order and each value, naming file:line.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/bpe_pretokenize.h"   // InvalidUtf8

namespace loom {

struct CharEncodeOptions {
  InvalidUtf8 invalid_utf8 = InvalidUtf8::kError;   // kKeepBytes is refused (ConfigError)
  std::string_view source = "text";
  uint64_t source_offset = 0;
};

// The sorted distinct code points of text (U+FFFD stands for invalid UTF-8 under kReplace).
std::vector<uint32_t> distinct_code_points(std::string_view text,
                                           const CharEncodeOptions& opt = {});
// The sorted union of two sorted code point sets (for counts made by several ranks).
std::vector<uint32_t> merge_code_points(std::span<const uint32_t> a, std::span<const uint32_t> b);

class CharTokenizer {
 public:
  // code_points: strictly increasing, each a Unicode scalar value (DataError otherwise).
  explicit CharTokenizer(std::vector<uint32_t> code_points);
  static CharTokenizer from_text(std::string_view text, const CharEncodeOptions& opt = {});
  static CharTokenizer load(const std::string& path);
  void save(const std::string& path) const;   // crash-safe (tmp, fsync, rename, fsync dir)
  std::string format() const;                 // the file's text

  size_t vocab_size() const { return code_points_.size(); }
  uint32_t code_point(uint32_t id) const { return code_points_.at(id); }
  const std::vector<uint32_t>& code_points() const { return code_points_; }
  uint64_t fingerprint() const { return fingerprint_; }

  // Appends one id per code point; a code point outside the vocabulary is a DataError
  // naming its byte offset (source + offset + position) and its value. (Under kReplace,
  // offsets past a replaced sequence count the bytes of the text with U+FFFD in it.)
  void encode_append(std::string_view text, std::vector<uint32_t>& out,
                     const CharEncodeOptions& opt = {}) const;
  std::vector<uint32_t> encode(std::string_view text, const CharEncodeOptions& opt = {}) const;
  std::string decode(std::span<const uint32_t> ids) const;   // DataError for an unknown id

 private:
  std::vector<uint32_t> code_points_;   // (V) sorted
  std::vector<int32_t> id_of_;          // (max code point + 1) id or -1
  uint64_t fingerprint_ = 0;
};

}  // namespace loom
