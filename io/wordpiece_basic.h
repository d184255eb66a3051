#pragma once
// BERT's basic tokenizer: text -> words, exactly as Hugging Face `tokenizers`'
// BertNormalizer followed by BertPreTokenizer (the reference: tokenizers 0.20.3).
//
// Note [BERT basic tokenizer]
// Per character c of the (valid UTF-8) text, by io/wordpiece_tables.h's class of c:
//   removed       NUL, U+FFFD, controls (Cc, Cf, Co, Cs except \t \n \r): c vanishes,
//                 joining its neighbours ("a\x0Bb" is one word "ab", as HF does);
//   white space   ends the current word;
//   CJK           (tokenize_chinese_chars) a word of its own;
//   otherwise     c is mapped - strip_accents: NFD with the Mn marks dropped; lowercase:
//                 each resulting character's lower-case form - and each mapped character
//                 is punctuation (a word of its own) or joins the current word.
// HF normalizes the whole text first (clean, space CJK, NFD + drop Mn, lowercase) and then
// splits; every step is per character except NFD's canonical reordering of combining
// marks, which only matters between two kept marks of different combining classes
// (non-Mn marks with a combining class: a handful of musical symbols) - loom keeps their
// order of appearance.
// Words are UTF-8 strings handed to the caller; a word is never empty.
//
// ASCII runs take a fast path: one 128-entry table gives each byte's action and its
// lower-case form. Characters whose mapping changes them come from one hash map built for
// the options at construction.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "io/unicode_class.h"
#include "io/wordpiece_tables.h"

namespace loom {

struct WordPieceOptions {
  bool lowercase = true;                // uncased BERT
  int strip_accents = -1;               // -1: follows lowercase (BERT, HF); 0 no; 1 yes
  bool tokenize_chinese_chars = true;   // CJK ideographs as words of their own
  size_t max_input_chars_per_word = 100;   // longer words become [UNK]

  bool strips() const { return strip_accents < 0 ? lowercase : strip_accents != 0; }
};

class BertBasicTokenizer {
 public:
  explicit BertBasicTokenizer(const WordPieceOptions& opt);

  // Calls on_word(std::string_view word) for each word of valid UTF-8 `text`, in order.
  // The view lives until on_word returns.
  template <typename OnWord>
  void split(std::string_view text, std::string& word, OnWord&& on_word) const;

 private:
  enum Action : uint8_t { kJoin = 0, kDrop = 1, kBreak = 2, kAlone = 3 };
  // Characters with a mapping get kMapped in their class byte's high bit.
  static constexpr uint8_t kMapped = 0x80;
  uint8_t class_of(uint32_t cp) const {
    if (cp > unicode::kMaxCodePoint) return static_cast<uint8_t>(unicode::BertClass::kOther);
    const uint16_t b = block_[cp >> 8];
    if (b & kUniform) return static_cast<uint8_t>(b & 0xFF);
    return static_cast<uint8_t>(leaves_[(size_t{b} << 8) | (cp & 0xFF)]);
  }
  template <typename OnWord>
  void on_char(uint32_t cp, const char* bytes, size_t len, std::string& word, OnWord& on_word) const;

  static constexpr uint16_t kUniform = 0x8000;
  uint8_t ascii_action_[128];
  char ascii_byte_[128];            // the byte a kJoin ASCII character becomes
  uint16_t block_[(unicode::kMaxCodePoint + 1) >> 8];   // kUniform | class, or a leaf index
  std::string leaves_;              // (leaves, 256) class bytes (| kMapped)
  std::unordered_map<uint32_t, std::string> mapped_;   // code point -> its mapped UTF-8
  bool chinese_;
};

// ---- inline: the hot loop -----------------------------------------------------------------

template <typename OnWord>
void BertBasicTokenizer::on_char(uint32_t cp, const char* bytes, size_t len, std::string& word,
                                 OnWord& on_word) const {
  using unicode::BertClass;
  const uint8_t c = class_of(cp);
  const auto cls = static_cast<BertClass>(c & 0x7F);
  auto end_word = [&] {
    if (!word.empty()) {
      on_word(std::string_view(word));
      word.clear();
    }
  };
  if (cls == BertClass::kRemove) return;
  if (cls == BertClass::kSpace) {
    end_word();
    return;
  }
  std::string_view out(bytes, len);
  if (c & kMapped) out = mapped_.find(cp)->second;
  if (cls == BertClass::kCjk && chinese_) {
    end_word();
    if (!out.empty()) on_word(out);
    return;
  }
  if (!(c & kMapped)) {
    if (cls == BertClass::kPunct) {
      end_word();
      on_word(out);
    } else {
      word.append(out);
    }
    return;
  }
  // A mapped character: its characters classified again (Note [BERT basic tokenizer]).
  const auto* p = reinterpret_cast<const unsigned char*>(out.data());
  const auto* e = p + out.size();
  while (p < e) {
    const unicode::Utf8Char m = unicode::decode_utf8(p, e);
    const std::string_view piece(reinterpret_cast<const char*>(p), m.len);
    p += m.len;
    if (static_cast<BertClass>(class_of(m.cp) & 0x7F) == BertClass::kPunct) {
      end_word();
      on_word(piece);
    } else {
      word.append(piece);
    }
  }
}

template <typename OnWord>
void BertBasicTokenizer::split(std::string_view text, std::string& word, OnWord&& on_word) const {
  word.clear();
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const unsigned char b = *p;
    if (b < 0x80) {
      switch (ascii_action_[b]) {
        case kJoin: word.push_back(ascii_byte_[b]); break;
        case kDrop: break;
        case kBreak:
          if (!word.empty()) {
            on_word(std::string_view(word));
            word.clear();
          }
          break;
        default:   // kAlone: punctuation
          if (!word.empty()) {
            on_word(std::string_view(word));
            word.clear();
          }
          on_word(std::string_view(reinterpret_cast<const char*>(p), 1));
          break;
      }
      ++p;
      continue;
    }
    const unicode::Utf8Char c = unicode::decode_utf8(p, end);
    on_char(c.cp, reinterpret_cast<const char*>(p), c.len, word, on_word);
    p += c.len;
  }
  if (!word.empty()) {
    on_word(std::string_view(word));
    word.clear();
  }
}

}  // namespace loom
