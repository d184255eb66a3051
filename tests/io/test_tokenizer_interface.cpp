// The Tokenizer interface (io/tokenizer.h) over BPE and the character tokenizer: the same
// ids as the concrete classes, documents joined by the separator on any thread count, files
// saved and loaded back, and refusals that name the file and line.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "io/bpe_tokenizer.h"
#include "io/bpe_train.h"
#include "io/char_tokenizer.h"
#include "io/tokenizer.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

const char* const kText =
    "The quick brown fox jumps over the lazy dog. The dog sleeps; the fox runs on.\n"
    "Numbers 12345 and 678, words like don't and we'll, and ümlauts über alles.\n";

BpeVocab small_vocab() {
  BpeWordCounts counts;
  for (int i = 0; i < 3; ++i) count_bpe_words(kText, counts);
  BpeTrainOptions opt;
  opt.vocab_size = 300;
  return train_bpe(counts, opt);
}

std::vector<std::string_view> documents() {
  return {"first document, about a fox.", "second: the dog.", "", "fourth ümlaut text 12"};
}

TEST(Tokenizer, BpeThroughTheInterfaceMatchesBpeTokenizerAndJoinsDocumentsWithEot) {
  test::TempDir dir;
  write_bpe_files(small_vocab(), dir.file("vocab.json"), dir.file("merges.txt"));
  const std::vector<std::string> files = {dir.file("vocab.json"), dir.file("merges.txt")};
  std::unique_ptr<Tokenizer> tok = load_tokenizer("bpe", files);
  BpeTokenizer direct = BpeTokenizer::load(files[0], files[1]);
  EXPECT_EQ(tok->kind(), "bpe");
  EXPECT_EQ(tok->vocab_size(), direct.vocab_size());
  EXPECT_EQ(tok->fingerprint(), direct.fingerprint());
  ASSERT_TRUE(tok->eot_id().has_value());
  EXPECT_EQ(*tok->eot_id(), direct.eot_id());
  EXPECT_EQ(tok->encode(kText), direct.encode(kText));
  EXPECT_EQ(tok->decode(tok->encode(kText)), kText);

  const std::vector<std::string_view> docs = documents();
  std::vector<uint32_t> one, three;
  tok->encode_documents(docs, "\n\n", one, {});
  TokenizeOptions opt;
  opt.threads = 3;
  tok->encode_documents(docs, "\n\n", three, opt);
  EXPECT_EQ(one, three);
  std::vector<uint32_t> want;
  for (size_t d = 0; d < docs.size(); ++d) {
    if (d > 0) want.push_back(direct.eot_id());
    std::vector<uint32_t> ids = direct.encode(docs[d]);
    want.insert(want.end(), ids.begin(), ids.end());
  }
  EXPECT_EQ(one, want);
  EXPECT_EQ(tok->separator_ids("\n\n"), std::vector<uint32_t>{direct.eot_id()});

  const std::vector<std::string> saved = tok->save_files(dir.file("export"));
  ASSERT_EQ(saved.size(), 2u);
  EXPECT_EQ(load_tokenizer("bpe", saved)->fingerprint(), tok->fingerprint());
}

TEST(Tokenizer, CharThroughTheInterfaceJoinsDocumentsWithTheTextSeparator) {
  test::TempDir dir;
  const std::string text = std::string(kText) + "\n\nfirst document, about a fox.second: the dog.fourth";
  CharTokenizer::from_text(text).save(dir.file("chars.txt"));
  const std::vector<std::string> files = {dir.file("chars.txt")};
  std::unique_ptr<Tokenizer> tok = load_tokenizer("char", files);
  EXPECT_EQ(tok->kind(), "char");
  EXPECT_FALSE(tok->eot_id().has_value());
  const std::vector<std::string_view> docs = documents();
  std::vector<uint32_t> one, four;
  tok->encode_documents(docs, "\n\n", one, {});
  TokenizeOptions opt;
  opt.threads = 4;
  tok->encode_documents(docs, "\n\n", four, opt);
  EXPECT_EQ(one, four);
  EXPECT_EQ(tok->decode(one), "first document, about a fox.\n\nsecond: the dog.\n\n\n\nfourth ümlaut text 12");
  const std::vector<std::string> saved = tok->save_files(dir.file("export"));
  ASSERT_EQ(saved.size(), 1u);
  EXPECT_EQ(load_tokenizer("char", saved)->fingerprint(), tok->fingerprint());
  // A character outside the vocabulary names the source and byte.
  TokenizeOptions named;
  named.source = "corpus.txt";
  named.source_offset = 100;
  try {
    tok->encode("fox \xE2\x82\xAC", named);
    FAIL() << "the euro sign is not in the vocabulary";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("corpus.txt: byte 104"), std::string::npos) << e.what();
  }
}

TEST(Tokenizer, MismatchedVocabAndMergesAreRefusedNamingFileAndLine) {
  test::TempDir dir;
  BpeVocab v = small_vocab();
  write_bpe_files(v, dir.file("vocab.json"), dir.file("merges.txt"));
  // merges.txt of another vocabulary: its third merge makes a token vocab.json lacks.
  std::string merges = test::read_file(dir.file("merges.txt"));
  merges.insert(merges.find('\n', merges.find('\n', merges.find('\n') + 1) + 1) + 1, "q z\n");
  test::write_file(dir.file("other-merges.txt"), merges);
  const std::vector<std::string> files = {dir.file("vocab.json"), dir.file("other-merges.txt")};
  try {
    load_tokenizer("bpe", files);
    FAIL() << "a merge whose result is not a token was accepted";
  } catch (const DataError& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find(dir.file("other-merges.txt") + ":4:"), std::string::npos) << msg;
    EXPECT_NE(msg.find("\"q\" and \"z\""), std::string::npos) << msg;
  }
  // A merge part missing from the vocabulary.
  test::write_file(dir.file("bad-part.txt"), "#version: 0.2\nq\u0100 z\n");
  const std::vector<std::string> bad_part = {dir.file("vocab.json"), dir.file("bad-part.txt")};
  try {
    load_tokenizer("bpe", bad_part);
    FAIL() << "a merge part outside the vocabulary was accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find(dir.file("bad-part.txt") + ":2:"), std::string::npos) << e.what();
  }
  EXPECT_THROW(load_tokenizer("wordpiece", files), ConfigError);
  EXPECT_THROW(load_tokenizer("bpe", std::vector<std::string>{dir.file("vocab.json")}), ConfigError);
  EXPECT_THROW(load_tokenizer("bpe", std::vector<std::string>{dir.file("missing.json"), dir.file("merges.txt")}),
               IoError);
}

}  // namespace
}  // namespace loom
