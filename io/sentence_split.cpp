#include "io/sentence_split.h"

#include <algorithm>
#include <array>
#include <cstdint>

#include "io/unicode_class.h"
#include "io/utf8.h"

namespace loom {
namespace {

using unicode::CharClass;

// Note [Sentence splitter], rule 3.
constexpr std::array<std::string_view, 33> kAbbreviations = {
    "Mr",  "Mrs", "Ms",  "Dr",  "Prof", "St",   "Sr",   "Jr",  "Mt",  "Ft",  "Fr",
    "Gen", "Col", "Lt",  "Sgt", "Capt", "Cmdr", "Adm",  "Gov", "Sen", "Rep", "Rev",
    "Hon", "Pres", "Messrs", "vs", "cf", "viz", "etc", "al",  "c",   "ca",  "approx"};
constexpr std::array<std::string_view, 29> kNumberAbbreviations = {
    "No",  "Nos", "Vol", "vol", "pp",  "p",   "Fig", "fig", "Ch",   "ch",  "Art", "art", "Op",
    "op",  "fl",  "b",   "d",   "Jan", "Feb", "Mar", "Apr", "Jun", "Jul", "Aug", "Sep",
    "Sept", "Oct", "Nov", "Dec"};

struct Char {
  uint32_t cp;   // unicode::kInvalidCodePoint for invalid UTF-8
  size_t len;
};

Char char_at(std::string_view s, size_t i) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  const unicode::Utf8Char c = unicode::decode_utf8(p + i, p + s.size());
  return {c.cp, c.len};
}

// The start of the character that ends at s[i - 1] (i > 0).
size_t previous_start(std::string_view s, size_t i) {
  size_t q = i - 1;
  while (q > 0 && i - q < 4 && (static_cast<unsigned char>(s[q]) & 0xC0) == 0x80) --q;
  return q;
}

bool is_space(uint32_t cp) {
  if (cp < 0x80) return cp == ' ' || cp == '\t' || cp == '\v' || cp == '\f';
  return cp != unicode::kInvalidCodePoint && unicode::char_class(cp) == CharClass::kSpace;
}
bool is_terminator(uint32_t cp) { return cp == '.' || cp == '!' || cp == '?' || cp == 0x2026; }
bool is_closing(uint32_t cp) {
  return cp == '"' || cp == '\'' || cp == ')' || cp == ']' || cp == '}' || cp == 0x2019 ||
         cp == 0x201D || cp == 0xBB;
}
bool is_opening(uint32_t cp) {
  return cp == '"' || cp == '\'' || cp == '(' || cp == '[' || cp == '{' || cp == 0x2018 ||
         cp == 0x201C || cp == 0xAB || cp == 0xBF || cp == 0xA1;
}
bool is_digit(uint32_t cp) { return cp >= '0' && cp <= '9'; }
bool can_start_sentence(uint32_t cp) {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') || is_digit(cp) || is_opening(cp);
  return is_opening(cp) ||
         (cp != unicode::kInvalidCodePoint && unicode::char_class(cp) == CharClass::kLetter);
}
bool is_capital(uint32_t cp) {
  if (cp < 0x80) return cp >= 'A' && cp <= 'Z';
  return cp != unicode::kInvalidCodePoint && utf8::to_lower(cp) != cp;
}

// Bytes of the line break at s[i], or 0 (Note [Sentence splitter], rule 1).
size_t line_break_at(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  if (c == '\n') return 1;
  if (c == '\r') return i + 1 < s.size() && s[i + 1] == '\n' ? 2 : 1;
  if (c == 0xC2 && i + 1 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x85) return 2;
  if (c == 0xE2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
      (static_cast<unsigned char>(s[i + 2]) == 0xA8 || static_cast<unsigned char>(s[i + 2]) == 0xA9))
    return 3;
  return 0;
}

// Appends s trimmed of white space, unless nothing is left.
void emit(std::string_view s, std::vector<std::string_view>& out) {
  size_t b = 0, e = s.size();
  while (b < e) {
    const Char c = char_at(s, b);
    if (!is_space(c.cp)) break;
    b += c.len;
  }
  while (e > b) {
    const size_t q = previous_start(s, e);
    if (!is_space(char_at(s, q).cp)) break;
    e = q;
  }
  if (e > b) out.push_back(s.substr(b, e - b));
}

bool ends_word(uint32_t cp) {
  return is_space(cp) || cp == '-' || cp == '/' || cp == 0x2013 || cp == 0x2014;
}

// The word before the '.' at line[dot]: back to white space, a hyphen, a slash or a dash
// ("Lt-Gen.", "Minneapolis-St."), less opening punctuation.
std::string_view word_before(std::string_view line, size_t dot) {
  size_t w = dot;
  while (w > 0) {
    const size_t q = previous_start(line, w);
    if (ends_word(char_at(line, q).cp)) break;
    w = q;
  }
  while (w < dot) {
    const Char c = char_at(line, w);
    if (!is_opening(c.cp)) break;
    w += c.len;
  }
  return line.substr(w, dot - w);
}

bool is_letter(uint32_t cp) {
  if (cp < 0x80) return (cp >= 'A' && cp <= 'Z') || (cp >= 'a' && cp <= 'z');
  return cp != unicode::kInvalidCodePoint && unicode::char_class(cp) == CharClass::kLetter;
}

// "J.R.R", "U.S", "e.g": two or more single letters joined by dots.
bool is_dotted_letters(std::string_view word) {
  size_t at = 0, letters = 0;
  while (true) {
    const Char c = char_at(word, at);
    if (!is_letter(c.cp)) return false;
    ++letters;
    at += c.len;
    if (at == word.size()) return letters >= 2;
    if (word[at] != '.' || at + 1 == word.size()) return false;
    ++at;
  }
}

// Rule 3: the single '.' at line[dot] does not end a sentence whose next character is next.
bool is_abbreviation(std::string_view line, size_t dot, uint32_t next) {
  const std::string_view word = word_before(line, dot);
  if (word.empty()) return false;
  const Char first = char_at(word, 0);
  if (first.len == word.size() && is_capital(first.cp)) return true;   // an initial
  if (is_dotted_letters(word)) return true;
  if (std::find(kAbbreviations.begin(), kAbbreviations.end(), word) != kAbbreviations.end())
    return true;
  return is_digit(next) &&
         std::find(kNumberAbbreviations.begin(), kNumberAbbreviations.end(), word) !=
             kNumberAbbreviations.end();
}

// Rules 2-4 inside one line (no line breaks in it).
void split_line(std::string_view line, std::vector<std::string_view>& out) {
  size_t start = 0, i = 0;
  const size_t n = line.size();
  auto skip = [&](size_t at, bool (*pred)(uint32_t)) {
    while (at < n) {
      const Char c = char_at(line, at);
      if (!pred(c.cp)) break;
      at += c.len;
    }
    return at;
  };
  while (i < n) {
    // Terminators are '.', '!', '?' or U+2026 (E2 80 A6): other bytes are skipped undecoded
    // (no UTF-8 continuation byte takes these values).
    const auto byte = static_cast<unsigned char>(line[i]);
    if (byte != '.' && byte != '!' && byte != '?' && byte != 0xE2) {
      ++i;
      continue;
    }
    const Char c = char_at(line, i);
    if (!is_terminator(c.cp)) {
      i += c.len;
      continue;
    }
    const size_t run_end = skip(i, is_terminator);
    const size_t sentence_end = skip(run_end, is_closing);
    const size_t next_at = skip(sentence_end, is_space);
    if (next_at == sentence_end || next_at == n) {   // no white space, or only it, follows
      i = run_end;
      continue;
    }
    const uint32_t next = char_at(line, next_at).cp;
    const bool single_period = run_end - i == 1 && line[i] == '.';
    if (!can_start_sentence(next) || (single_period && is_abbreviation(line, i, next))) {
      i = run_end;
      continue;
    }
    emit(line.substr(start, sentence_end - start), out);
    start = i = next_at;
  }
  emit(line.substr(start), out);
}

}  // namespace

void split_sentences(std::string_view document, std::vector<std::string_view>& out) {
  size_t line_start = 0;
  for (size_t i = 0; i < document.size();) {
    const size_t brk = line_break_at(document, i);
    if (brk == 0) {
      ++i;
      continue;
    }
    split_line(document.substr(line_start, i - line_start), out);
    i += brk;
    line_start = i;
  }
  split_line(document.substr(line_start), out);
}

std::vector<std::string_view> split_sentences(std::string_view document) {
  std::vector<std::string_view> out;
  split_sentences(document, out);
  return out;
}

}  // namespace loom
