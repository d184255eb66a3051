// loom's WordPiece tokenizer alone: greedy longest match, BERT's basic tokenizer on known
// cases, vocab.txt errors naming file:line, decode, the Tokenizer interface, invalid UTF-8,
// threads, and the trainer (size, order, determinism, counts split any way).
// tests/io/test_wordpiece_hf.cpp holds the ids against Hugging Face.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/tokenizer.h"
#include "io/wordpiece.h"
#include "io/wordpiece_train.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

using Ids = std::vector<uint32_t>;

std::vector<std::string> small_vocab() {
  return {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "un", "##aff", "##able", "hello", "world",
          ",", "!", "the", "a", "##b", "b", "ca", "##fe", "é", "##é", "日", "本", "the##"};
}

std::vector<std::string> words_of(const WordPieceTokenizer& tok, std::string_view text) {
  std::vector<std::string> out;
  for (uint32_t id : tok.encode(text)) out.emplace_back(tok.token(id));
  return out;
}

TEST(WordPiece, GreedyLongestMatchFirst) {
  const WordPieceTokenizer tok(small_vocab());
  using V = std::vector<std::string>;
  EXPECT_EQ(words_of(tok, "unaffable"), (V{"un", "##aff", "##able"}));
  EXPECT_EQ(words_of(tok, "Hello, World!"), (V{"hello", ",", "world", "!"}));
  EXPECT_EQ(words_of(tok, "unaffablex"), (V{"[UNK]"}));   // the rest not covered: one [UNK]
  EXPECT_EQ(words_of(tok, "abbb"), (V{"a", "##b", "##b", "##b"}));
  EXPECT_EQ(words_of(tok, "CAFÉ café"), (V{"ca", "##fe", "ca", "##fe"}));   // uncased strips accents
  EXPECT_EQ(words_of(tok, "日本"), (V{"日", "本"}));                            // CJK: words of their own
  EXPECT_EQ(words_of(tok, "[CLS]"), (V{"[UNK]", "[UNK]", "[UNK]"}));         // "[", "cls", "]"
  EXPECT_EQ(words_of(tok, std::string(100, 'b')).size(), 100u);
  EXPECT_EQ(words_of(tok, std::string(101, 'b')), (V{"[UNK]"}));             // > 100 characters
  EXPECT_EQ(words_of(tok, "a\x0B" "b\xC2\xAD" "b"), (V{"a", "##b", "##b"}));   // controls vanish
  EXPECT_EQ(words_of(tok, "\xC2\xA0" "a\xE3\x80\x80" "a\r\n\ta"), (V{"a", "a", "a"}));

  WordPieceOptions cased;
  cased.lowercase = false;
  const WordPieceTokenizer ctok(small_vocab(), cased);
  EXPECT_EQ(words_of(ctok, "Hello hello"), (V{"[UNK]", "hello"}));
  EXPECT_EQ(words_of(ctok, "é"), (V{"é"}));
  EXPECT_NE(ctok.fingerprint(), tok.fingerprint());   // the options are part of it
  EXPECT_EQ(tok.pad_id(), 0u);
  EXPECT_EQ(tok.unk_id(), 1u);
  EXPECT_EQ(tok.cls_id(), 2u);
  EXPECT_EQ(tok.sep_id(), 3u);
  EXPECT_EQ(tok.mask_id(), 4u);
}

std::string expect_data_error(const std::string& text, const std::string& path) {
  test::write_file(path, text);
  try {
    WordPieceTokenizer::load(path);
  } catch (const DataError& e) {
    return e.what();
  }
  ADD_FAILURE() << "no DataError for " << path;
  return "";
}

TEST(WordPiece, BadVocabFilesNameFileAndLine) {
  test::TempDir dir;
  const std::string path = dir.file("vocab.txt");
  std::string msg = expect_data_error("[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\n", path);
  EXPECT_NE(msg.find("[MASK]"), std::string::npos) << msg;
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  msg = expect_data_error("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\nworld\nhello\n", path);
  EXPECT_NE(msg.find(path + ":8"), std::string::npos) << msg;
  EXPECT_NE(msg.find("line 6"), std::string::npos) << msg;
  msg = expect_data_error("[PAD]\n[UNK]\n\n[CLS]\n[SEP]\n[MASK]\n", path);
  EXPECT_NE(msg.find(path + ":3"), std::string::npos) << msg;
  EXPECT_THROW(WordPieceTokenizer::load(dir.file("missing.txt")), IoError);
  // CRLF and a missing final newline are accepted.
  test::write_file(path, "[PAD]\r\n[UNK]\r\n[CLS]\r\n[SEP]\r\n[MASK]\r\nhello");
  EXPECT_EQ(WordPieceTokenizer::load(path).token_id("hello"), 5u);
}

TEST(WordPiece, DecodeJoinsPiecesAsHuggingFace) {
  const WordPieceTokenizer tok(small_vocab());
  const Ids ids = tok.encode("unaffable hello , world!");
  EXPECT_EQ(tok.decode(ids), "unaffable hello, world!");
  const Ids with_specials = {tok.cls_id(), 8, tok.sep_id()};
  EXPECT_EQ(tok.decode(with_specials), "[CLS] hello [SEP]");
  const Ids bad = {8, 99};
  try {
    tok.decode(bad);
    FAIL() << "no DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("position 1"), std::string::npos) << e.what();
  }
}

std::string random_ascii_text(unsigned seed, int words) {
  static const char* const kWords[] = {"the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog",
                                       "tokenizer", "language", "model", "pieces", "running", "quickly",
                                       "unbelievable", "data", "parallel", "training", "a", "of"};
  static const char* const kSpaces[] = {" ", " ", " ", "  ", "\n", "\t", " \n "};
  std::mt19937 rng(seed);
  std::string text;
  for (int i = 0; i < words; ++i) {
    text += kWords[rng() % std::size(kWords)];
    if (rng() % 9 == 0) text += kWords[rng() % std::size(kWords)];   // unseen compounds
    text += kSpaces[rng() % std::size(kSpaces)];
  }
  return text;
}

std::string squeeze_spaces(std::string_view text) {
  std::string out;
  for (char c : text) {
    const bool space = c == ' ' || c == '\n' || c == '\t';
    if (space) {
      if (!out.empty() && out.back() != ' ') out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

WordPieceTokenizer trained_on(const std::vector<std::string>& docs, size_t vocab_size) {
  const BertBasicTokenizer basic{WordPieceOptions{}};
  BpeWordCounts counts;
  for (const std::string& d : docs) count_wordpiece_words(basic, d, counts);
  WordPieceTrainOptions opt;
  opt.vocab_size = vocab_size;
  return WordPieceTokenizer(train_wordpiece(counts, opt));
}

TEST(WordPiece, DecodeOfEncodeIsTheTextWithSingleSpaces) {
  const std::string text = random_ascii_text(1, 3000);
  const WordPieceTokenizer tok = trained_on({random_ascii_text(2, 3000)}, 120);
  const Ids ids = tok.encode(text);
  for (uint32_t id : ids) ASSERT_NE(id, tok.unk_id());
  EXPECT_EQ(tok.decode(ids), squeeze_spaces(text));
}

TEST(WordPiece, InvalidUtf8ErrorsOrVanishes) {
  const WordPieceTokenizer tok(small_vocab());
  TokenizeOptions opt;
  opt.source = "corpus.txt";
  opt.source_offset = 1000;
  try {
    tok.encode("hello \xFF world", opt);
    FAIL() << "no DataError";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("corpus.txt"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("1006"), std::string::npos) << e.what();
  }
  opt.invalid_utf8 = InvalidUtf8::kReplace;
  EXPECT_EQ(tok.encode("hel\xFFlo world", opt), tok.encode("hello world"));   // U+FFFD is cleaned away
  opt.invalid_utf8 = InvalidUtf8::kKeepBytes;
  EXPECT_THROW(tok.encode("hello", opt), ConfigError);
}

TEST(WordPiece, TokenizerInterfaceAndThreads) {
  test::TempDir dir;
  const std::vector<std::string> docs = {random_ascii_text(3, 500), random_ascii_text(4, 10), "",
                                         random_ascii_text(5, 700), "Hello, world!"};
  const WordPieceTokenizer trained = trained_on(docs, 150);
  trained.save(dir.file("vocab.txt"));
  const std::vector<std::string> paths = {dir.file("vocab.txt")};
  const std::unique_ptr<Tokenizer> tok = load_tokenizer("wordpiece", paths);
  EXPECT_EQ(tok->kind(), "wordpiece");
  EXPECT_EQ(tok->fingerprint(), trained.fingerprint());
  EXPECT_EQ(tok->eot_id(), trained.sep_id());
  EXPECT_EQ(tok->special_id("[MASK]"), trained.mask_id());
  EXPECT_EQ(tok->special_id("[CLS]"), trained.cls_id());
  EXPECT_EQ(tok->special_id("<|endoftext|>"), std::nullopt);
  TokenizerLoadOptions cased;
  cased.lowercase = false;
  EXPECT_NE(load_tokenizer("wordpiece", paths, cased)->fingerprint(), tok->fingerprint());

  std::vector<std::string_view> views(docs.begin(), docs.end());
  Ids expected;
  for (size_t d = 0; d < docs.size(); ++d) {
    if (d > 0) expected.push_back(trained.sep_id());
    tok->encode_append(docs[d], expected);
  }
  for (int threads : {1, 2, 3, 8}) {
    TokenizeOptions opt;
    opt.threads = threads;
    Ids ids = {7};
    tok->encode_documents(views, "\n\n", ids, opt);
    ids.erase(ids.begin());
    EXPECT_EQ(ids, expected) << threads << " threads";
  }
  const std::vector<std::string> saved = tok->save_files(dir.file("export"));
  ASSERT_EQ(saved.size(), 1u);
  EXPECT_EQ(test::read_file(saved[0]), test::read_file(dir.file("vocab.txt")));
}

TEST(WordPieceTrain, ExactSizeSpecialsFirstDeterministic) {
  std::vector<std::string> docs;
  for (unsigned s = 0; s < 6; ++s) docs.push_back(random_ascii_text(10 + s, 2000) + " Ünïcödé 日本語 ça");
  const BertBasicTokenizer basic{WordPieceOptions{}};
  BpeWordCounts all, first, second;
  for (size_t d = 0; d < docs.size(); ++d) {
    count_wordpiece_words(basic, docs[d], all);
    count_wordpiece_words(basic, docs[d], d % 2 ? first : second);
  }
  merge_word_counts(first, second);
  BpeWordCounts exchanged;
  deserialize_word_counts(serialize_word_counts(first), exchanged);
  WordPieceTrainOptions opt;
  opt.vocab_size = 90;
  const std::vector<std::string> vocab = train_wordpiece(all, opt);
  ASSERT_EQ(vocab.size(), 90u);
  for (size_t s = 0; s < 5; ++s) EXPECT_EQ(vocab[s], kWordPieceSpecials[s]);
  EXPECT_EQ(train_wordpiece(exchanged, opt), vocab);   // counts split and exchanged: the same
  EXPECT_EQ(train_wordpiece(all, opt), vocab);
  // The alphabet in code point order, then "##" forms, then merges.
  EXPECT_EQ(vocab[5], "a");
  EXPECT_NO_THROW(WordPieceTokenizer{vocab});
  // A corpus that cannot fill the vocabulary gives fewer tokens.
  opt.vocab_size = 5000;
  const std::vector<std::string> small = train_wordpiece(all, opt);
  EXPECT_LT(small.size(), 5000u);
  EXPECT_GT(small.size(), 90u);
  // The alphabet limit: only the most frequent characters survive.
  opt.vocab_size = 30;
  opt.limit_alphabet = 3;
  const std::vector<std::string> tiny = train_wordpiece(all, opt);
  EXPECT_EQ(tiny.size(), 30u);
  opt.vocab_size = 3;
  EXPECT_THROW(train_wordpiece(all, opt), ConfigError);
}

}  // namespace
}  // namespace loom
