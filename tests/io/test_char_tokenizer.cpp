// Character-level tokenizer: vocabulary, round trips, its file, refusals.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "io/char_tokenizer.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

TEST(CharTokenizer, VocabularyIsTheSortedDistinctCodePoints) {
  const std::string text = "to be, or not\tto b\u00E9 \u4E2D\U0001F600\n";
  CharTokenizer tok = CharTokenizer::from_text(text);
  EXPECT_EQ(tok.code_points(),
            (std::vector<uint32_t>{'\t', '\n', ' ', ',', 'b', 'e', 'n', 'o', 'r', 't', 0xE9,
                                   0x4E2D, 0x1F600}));
  const std::vector<uint32_t> ids = tok.encode("be \u4E2D");
  EXPECT_EQ(ids, (std::vector<uint32_t>{4, 5, 2, 11}));
  EXPECT_EQ(tok.decode(tok.encode(text)), text);
  EXPECT_EQ(merge_code_points(std::vector<uint32_t>{1, 5, 9}, std::vector<uint32_t>{2, 5, 10}),
            (std::vector<uint32_t>{1, 2, 5, 9, 10}));
}

TEST(CharTokenizer, FileRoundTripAndFingerprint) {
  test::TempDir dir;
  CharTokenizer tok = CharTokenizer::from_text("Hello,\n w\u00F6rld \U0001F600");
  tok.save(dir.file("chars.txt"));
  const std::string file = test::read_file(dir.file("chars.txt"));
  EXPECT_EQ(file.substr(0, 37), "loom-char-vocab 1\nsize 12\n000A\n0020\n0");
  EXPECT_TRUE(contains(file, "1F600\t\U0001F600\n"));
  CharTokenizer back = CharTokenizer::load(dir.file("chars.txt"));
  EXPECT_EQ(back.code_points(), tok.code_points());
  EXPECT_EQ(back.fingerprint(), tok.fingerprint());
  EXPECT_NE(CharTokenizer::from_text("Hello").fingerprint(), tok.fingerprint());
}

TEST(CharTokenizer, RefusalsNameWhere) {
  CharTokenizer tok = CharTokenizer::from_text("abc");
  CharEncodeOptions opt;
  opt.source = "val.txt";
  opt.source_offset = 10;
  try {
    tok.encode("abxc", opt);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_TRUE(contains(e.what(), "val.txt: byte 12: U+0078 is not in the character vocabulary"))
        << e.what();
  }
  EXPECT_THROW(tok.encode("a\xff", opt), DataError);
  EXPECT_THROW(tok.decode(std::vector<uint32_t>{3}), DataError);
  opt.invalid_utf8 = InvalidUtf8::kReplace;
  EXPECT_EQ(CharTokenizer::from_text("a\xff", opt).code_points(),
            (std::vector<uint32_t>{'a', 0xFFFD}));
  opt.invalid_utf8 = InvalidUtf8::kKeepBytes;
  EXPECT_THROW(tok.encode("a", opt), ConfigError);
  EXPECT_THROW(CharTokenizer(std::vector<uint32_t>{5, 5}), DataError);
  EXPECT_THROW(CharTokenizer(std::vector<uint32_t>{0xD800}), DataError);

  test::TempDir dir;
  auto load_error = [&](const std::string& text) -> std::string {
    test::write_file(dir.file("v.txt"), text);
    try {
      CharTokenizer::load(dir.file("v.txt"));
    } catch (const DataError& e) {
      return e.what();
    }
    return "";
  };
  const std::string path = dir.file("v.txt");
  EXPECT_TRUE(contains(load_error("something else\n"), path + ":1: not a loom character"));
  EXPECT_TRUE(contains(load_error("loom-char-vocab 1\nsize 2\n0061\n0041\n"),
                       path + ":4: 0041 is not above"));
  EXPECT_TRUE(contains(load_error("loom-char-vocab 1\nsize 3\n0061\n0062\n"),
                       "says size 3 but lists 2"));
  EXPECT_TRUE(contains(load_error("loom-char-vocab 1\nsize 1\nxyz1\n"), path + ":3: expected"));
  EXPECT_EQ(load_error("loom-char-vocab 1\nsize 2\n0061\ta\n0062\n"), "");
  EXPECT_THROW(CharTokenizer::load(dir.file("absent.txt")), IoError);
}

}  // namespace
}  // namespace loom
