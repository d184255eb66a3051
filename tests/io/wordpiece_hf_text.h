#pragma once
// Text for comparing loom's WordPiece with Hugging Face: the BPE generator's multilingual
// documents (tests/io/bpe_hf_text.h) with BERT's own hard cases mixed in - accents and
// combining marks, capitals of many scripts, punctuation runs, CJK and Hangul, controls and
// NUL, unassigned and private-use characters, very long words - and fixed tricky strings.
#include <random>
#include <string>
#include <vector>

#include "tests/io/bpe_hf_text.h"

namespace loom::test {

inline std::vector<std::string> wordpiece_tricky_strings() {
  using namespace std::string_literals;
  std::vector<std::string> out = bpe_tricky_strings();
  for (std::string s :
       {"Caf\u00E9 CAF\u00C9 cafe\u0301 \u00C5ngstr\u00F6m \u212Bngstr\u00F6m", "na\u0308\u0131ve \u0130stanbul",
        "\u1E9E\u00DF STRASSE", "\u03A3\u039F\u03A6\u039F\u03A3 \u03C3\u03BF\u03C6\u03CC\u03C2",
        "\u01C5\u01C4\u01C6 \u1F88\u1FBC", "\u0301\u0301\u0301", "a\u0300\u0301\u0302b", "e\u20DD",
        "...!!!???", "--->", "(a)[b]{c}<d>", "\u00BF\u00A1Qu\u00E9?!", "\u201Cquoted\u201D \u2018x\u2019",
        "\u2026\u2014\u2013\u00B7\u2022", "\u3001\u3002\u300C\u300D\uFF08\uFF09", "a\u1FEFb a\u037Eb",
        "\u4E2D\u6587\u5B57\u7B26\u4E32", "\u6F22\u5B57abc\u304B\u306A", "\uF900\uFA0E\U0002F800",
        "\U00020000\U0002A6DF\U0002B820\U0002B920",
        "\uD55C\uAD6D\uC5B4\uB97C \uC548\uB155", "\u1100\u1161\u11A8", "\U0001F600\U0001F923\U0001FAE0",
        "\U0001F468\u200D\U0001F469\u200D\U0001F467", "x\u200By\u200Cz\u200Dw\uFEFFv",
        "a\x01" "b\x7F" "c\x1F" "d\x0B" "e\x0C" "f\u0085g", "tab\there\r\nnew\rline",
        "\u00A0nbsp\u00A0\u2007\u202F\u3000ideo\u3000space", "\u2028\u2029", "\uE000\U000F0000\U00100000",
        "\u0378\u0379\U000E0001\U0001D165\U0001D16D", "\uFFFD\uFFFDreplaced", "\uFFFE\uFFFF",
        "\u0E01\u0E34\u0E19\u0E02\u0E49\u0E32\u0E27", "\u0928\u092E\u0938\u094D\u0924\u0947",
        "\u05E9\u05B8\u05C1\u05DC\u05D5\u05B9\u05DD", "\u0627\u0644\u0633\u0651\u064E\u0644\u0627\u0645",
        "\u1734\u180F\u0C3C", "\u2160\u2161 \u2170 \u24B6\u24D0", "\uFF21\uFF22\uFF43 \uFF11\uFF12",
        "\u00BD \u2153 x\u00B2 \u2082", "\U0001D400\U0001D41A", "ﬁﬂ ﬃ", "\u0149 \u01F0"}) {
    out.push_back(s);
  }
  out.push_back("nul\0inside"s);
  out.push_back("\0"s);
  out.push_back(std::string(101, 'a'));
  out.push_back(std::string(100, 'a'));
  out.push_back(std::string(99, 'a') + "\u00E9");                  // 100 characters, 101 bytes
  out.push_back(std::string(100, 'a') + "\u0301");                 // the mark stripped: 100 left
  out.push_back(std::string(60, 'x') + "\u4E2D" + std::string(60, 'y'));   // split by CJK
  std::string long_word;
  for (int i = 0; i < 40; ++i) long_word += "\u00E9\u4E00";
  out.push_back(long_word);
  std::string long_greek;
  for (int i = 0; i < 120; ++i) long_greek += "\u03B1";
  out.push_back(long_greek);
  return out;
}

// bpe_generated_docs plus BERT's hard characters sprinkled in.
inline std::vector<std::string> wordpiece_generated_docs(unsigned seed, int count) {
  static const std::vector<std::string> extra = {
      "\u0301", "\u0308", "\u00C0", "\u00C9", "\u00D1", "\u0130", "\u0131", "\u1E9E", "\u01C5",
      "\u212B", "\u2126", "\u3000", "\u00A0", "\t", "\r\n", "\x01", "\x7F", "\u200B", "\uFEFF",
      "\uE000", "\u0378", "\uFFFD", "\u4E00", "\u9FFF", "\uF900", "\uAC00", "\uD7A3", "\u1100",
      "\u3042", "\u30A2", "\u0E01", "\u0E34", "\u05B8", "\u064E", "!!", "...", "\u2014", "\u00BF",
      "\u1FEF", "\u037E", "\U0001F600", "\U0001F923", "\u00BD", "\u2460", "\uFF21", "\u0149",
      std::string(1, '\0')};
  std::vector<std::string> docs = bpe_generated_docs(seed, count);
  std::mt19937 rng(seed * 7919u + 1);
  for (std::string& d : docs) {
    const std::string& out = d;   // the extras go in at character boundaries
    std::string mixed;
    size_t i = 0;
    while (i < out.size()) {
      size_t len = 1;
      const auto b = static_cast<unsigned char>(out[i]);
      if (b >= 0xF0) len = 4;
      else if (b >= 0xE0) len = 3;
      else if (b >= 0xC0) len = 2;
      mixed.append(out, i, len);
      i += len;
      if (rng() % 25 == 0) mixed += extra[rng() % extra.size()];
    }
    if (rng() % 10 == 0) mixed += " " + std::string(90 + rng() % 30, "abcdefgh"[rng() % 8]) + " ";
    d = std::move(mixed);
  }
  return docs;
}

}  // namespace loom::test
