// GPT-2's pre-tokenizer on tricky text, and the Unicode class table under it.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "io/bpe_pretokenize.h"
#include "io/unicode_class.h"
#include "io/unicode_tables.h"

namespace loom {
namespace {

std::vector<std::string> pieces(std::string_view text) {
  std::vector<std::string> out;
  Gpt2PreTokenizer pre(text);
  std::string_view piece;
  while (pre.next(piece)) out.emplace_back(piece);
  return out;
}

using V = std::vector<std::string>;

TEST(Gpt2PreTokenizer, WordsTakeTheSpaceBeforeThem) {
  EXPECT_EQ(pieces("Hello world"), (V{"Hello", " world"}));
  EXPECT_EQ(pieces(""), V{});
  EXPECT_EQ(pieces(" "), V{" "});
  EXPECT_EQ(pieces("foo_bar-baz"), (V{"foo", "_", "bar", "-", "baz"}));
}

TEST(Gpt2PreTokenizer, Contractions) {
  EXPECT_EQ(pieces("I'm don't they're we've he'll I'd it's"),
            (V{"I", "'m", " don", "'t", " they", "'re", " we", "'ve", " he", "'ll", " I", "'d",
               " it", "'s"}));
  // Upper case is not a contraction; an apostrophe run is "other"; a space joins it.
  EXPECT_EQ(pieces("DON'T"), (V{"DON", "'", "T"}));
  EXPECT_EQ(pieces("''s"), (V{"''", "s"}));
  EXPECT_EQ(pieces(" 's"), (V{" '", "s"}));
  EXPECT_EQ(pieces("rock'n'roll"), (V{"rock", "'", "n", "'", "roll"}));
  EXPECT_EQ(pieces("'"), V{"'"});
  EXPECT_EQ(pieces("'l"), (V{"'", "l"}));
}

TEST(Gpt2PreTokenizer, WhiteSpaceRunsLeaveTheirLastCharacterToTheNextWord) {
  EXPECT_EQ(pieces("a  b"), (V{"a", " ", " b"}));
  EXPECT_EQ(pieces("a   b"), (V{"a", "  ", " b"}));
  EXPECT_EQ(pieces("a\n\nb"), (V{"a", "\n", "\n", "b"}));
  EXPECT_EQ(pieces("a \n b"), (V{"a", " \n", " b"}));
  EXPECT_EQ(pieces("a\tb"), (V{"a", "\t", "b"}));
  EXPECT_EQ(pieces("a\r\nb"), (V{"a", "\r", "\n", "b"}));
  EXPECT_EQ(pieces("\n\n The"), (V{"\n\n", " The"}));
  // A run that ends the text stays whole.
  EXPECT_EQ(pieces("end   "), (V{"end", "   "}));
  EXPECT_EQ(pieces("end\n"), (V{"end", "\n"}));
  // Non-ASCII white space: NO-BREAK SPACE, IDEOGRAPHIC SPACE; U+001C is not white space.
  EXPECT_EQ(pieces("a\u00A0b"), (V{"a", "\u00A0", "b"}));
  EXPECT_EQ(pieces("x\u3000\u3000y"), (V{"x", "\u3000", "\u3000", "y"}));
  EXPECT_EQ(pieces("a\x1c b"), (V{"a", "\x1c", " b"}));
}

TEST(Gpt2PreTokenizer, Digits) {
  EXPECT_EQ(pieces("abc123def 4567"), (V{"abc", "123", "def", " 4567"}));
  EXPECT_EQ(pieces("1,000.5"), (V{"1", ",", "000", ".", "5"}));
  // Fullwidth digits (Nd), Roman numeral (Nl), vulgar fraction (No) are numbers.
  EXPECT_EQ(pieces(" \uFF18\uFF19 \u216B\u00BD"), (V{" \uFF18\uFF19", " \u216B\u00BD"}));
  EXPECT_EQ(pieces("\u0661\u0662\u0663"), V{"\u0661\u0662\u0663"});   // Arabic-Indic digits
}

TEST(Gpt2PreTokenizer, PunctuationRuns) {
  EXPECT_EQ(pieces("Hello!!! ...what?"), (V{"Hello", "!!!", " ...", "what", "?"}));
  EXPECT_EQ(pieces("std::vector<int>"), (V{"std", "::", "vector", "<", "int", ">"}));
}

TEST(Gpt2PreTokenizer, AccentsAndCombiningMarks) {
  EXPECT_EQ(pieces("caf\u00E9 na\u00EFve"), (V{"caf\u00E9", " na\u00EFve"}));
  // A combining acute accent (Mn) is neither letter nor number: it splits the word.
  EXPECT_EQ(pieces("cafe\u0301s"), (V{"cafe", "\u0301", "s"}));
  // Devanagari vowel signs are marks too.
  EXPECT_EQ(pieces("\u0928\u092E\u0938\u094D\u0924\u0947"),
            (V{"\u0928\u092E\u0938", "\u094D", "\u0924", "\u0947"}));
}

TEST(Gpt2PreTokenizer, CjkAndEmoji) {
  EXPECT_EQ(pieces("日本語のテキスト"), V{"日本語のテキスト"});
  EXPECT_EQ(pieces("中文，标点"), (V{"中文", "，", "标点"}));
  EXPECT_EQ(pieces("한국어 텍스트"), (V{"한국어", " 텍스트"}));
  // Emoji are "other": they glue to neighbouring punctuation and to variation selectors.
  EXPECT_EQ(pieces("I \u2764\uFE0F \U0001F355!"), (V{"I", " \u2764\uFE0F", " \U0001F355!"}));
  EXPECT_EQ(pieces("a\U0001F468\u200D\U0001F469b"), (V{"a", "\U0001F468\u200D\U0001F469", "b"}));
}

TEST(Gpt2PreTokenizer, InvalidBytesAreOtherCharacters) {
  EXPECT_EQ(pieces("a\xff" "b"), (V{"a", "\xff", "b"}));
  EXPECT_EQ(pieces(" \xff\xfe"), V{" \xff\xfe"});
  EXPECT_EQ(pieces("x\xe2\x82y"), (V{"x", "\xe2\x82", "y"}));   // truncated 3-byte sequence
}

TEST(Gpt2PreTokenizer, PiecesTileAnyInput) {
  std::mt19937 rng(7);
  const std::vector<std::string> atoms = {"a", "Z", "1", " ", "  ", "\n", "\t", "'", "'s", "!",
                                          "\u00E9", "\u0301", "\u4E2D", "\U0001F600", "\u3000",
                                          "\xff", "\xe2\x82", "ll", "re"};
  for (int round = 0; round < 500; ++round) {
    std::string text;
    const int n = static_cast<int>(rng() % 30);
    for (int i = 0; i < n; ++i) text += atoms[rng() % atoms.size()];
    std::string joined;
    for (const std::string& p : pieces(text)) {
      ASSERT_FALSE(p.empty()) << "an empty piece in \"" << text << "\"";
      joined += p;
    }
    ASSERT_EQ(joined, text);
  }
}

TEST(UnicodeClasses, KnownCodePoints) {
  using unicode::CharClass;
  using unicode::char_class;
  EXPECT_EQ(char_class('A'), CharClass::kLetter);
  EXPECT_EQ(char_class('5'), CharClass::kNumber);
  EXPECT_EQ(char_class(' '), CharClass::kSpace);
  EXPECT_EQ(char_class('\n'), CharClass::kSpace);
  EXPECT_EQ(char_class(0x1C), CharClass::kOther);      // Python's isspace() says yes; \s says no
  EXPECT_EQ(char_class(0x85), CharClass::kSpace);
  EXPECT_EQ(char_class(0x0301), CharClass::kOther);    // combining mark
  EXPECT_EQ(char_class(0x4E00), CharClass::kLetter);
  EXPECT_EQ(char_class(0x0660), CharClass::kNumber);
  EXPECT_EQ(char_class(0x2028), CharClass::kSpace);
  EXPECT_EQ(char_class(0x180E), CharClass::kOther);    // white space before Unicode 6.3
  EXPECT_EQ(char_class(0x1F600), CharClass::kOther);
  EXPECT_EQ(char_class(0x20000), CharClass::kLetter);  // CJK extension B
  EXPECT_EQ(char_class(0xE000), CharClass::kOther);
  EXPECT_EQ(char_class(0x10FFFF), CharClass::kOther);
  EXPECT_EQ(char_class(0x110000), CharClass::kOther);
  EXPECT_STREQ(unicode::kUnicodeVersion, "14.0.0") << "regenerated: check the HF comparison";
}

TEST(UnicodeClasses, LookupTableEqualsTheRanges) {
  const unicode::ClassTable& table = unicode::ClassTable::get();
  size_t r = 0;
  for (uint32_t cp = 0; cp <= unicode::kMaxCodePoint; ++cp) {
    while (r < unicode::kClassRangeCount && unicode::kClassRanges[r].last < cp) ++r;
    const bool inside = r < unicode::kClassRangeCount && unicode::kClassRanges[r].first <= cp;
    const unicode::CharClass want = inside ? unicode::kClassRanges[r].cls : unicode::CharClass::kOther;
    ASSERT_EQ(table(cp), want) << "code point " << cp;
  }
  for (size_t i = 1; i < unicode::kClassRangeCount; ++i)
    ASSERT_GT(unicode::kClassRanges[i].first, unicode::kClassRanges[i - 1].last) << "range " << i;
}

TEST(Utf8Decode, MaximalSubparts) {
  auto decode = [](std::string_view s) {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    return unicode::decode_utf8(p, p + s.size());
  };
  EXPECT_EQ(decode("\xC3\xA9").cp, 0xE9u);
  EXPECT_EQ(decode("\xF0\x9F\x98\x80").cp, 0x1F600u);
  EXPECT_EQ(decode("\xC0\x80").len, 1u);           // overlong lead
  EXPECT_EQ(decode("\xE0\x80\x80").len, 1u);       // overlong: E0 must be followed by A0..BF
  EXPECT_EQ(decode("\xED\xA0\x80").len, 1u);       // surrogate
  EXPECT_EQ(decode("\xE2\x82").len, 2u);           // truncated
  EXPECT_EQ(decode("\xF4\x90\x80\x80").len, 1u);   // above U+10FFFF
  EXPECT_EQ(decode("\xF0\x9F\x98").len, 3u);
  EXPECT_EQ(decode("\xF0\x9F\x98").cp, unicode::kInvalidCodePoint);
}

}  // namespace
}  // namespace loom
