// Byte-level BPE: merge order, round trips, invalid UTF-8, special tokens, GPT-2's files.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/bpe_merge.h"
#include "io/bpe_tokenizer.h"
#include "io/bpe_train.h"
#include "tests/support/test_support.h"
#include "tests/io/bpe_test_vocab.h"

namespace loom {
namespace {

using test::make_bpe_vocab;
using Ids = std::vector<uint32_t>;

// The tokens of ids as strings, for readable failures.
std::vector<std::string> spell(const BpeTokenizer& tok, const Ids& ids) {
  std::vector<std::string> out;
  for (uint32_t id : ids) out.emplace_back(tok.token_bytes(id));
  return out;
}
using S = std::vector<std::string>;

TEST(BpeTokenizer, LowestRankFirstLeftmostFirst) {
  BpeTokenizer tok(make_bpe_vocab({{"a", "a"}}));
  EXPECT_EQ(spell(tok, tok.encode("aaa")), (S{"aa", "a"}));
  EXPECT_EQ(spell(tok, tok.encode("aaaa")), (S{"aa", "aa"}));
  BpeTokenizer bc_first(make_bpe_vocab({{"b", "c"}, {"a", "b"}}));
  EXPECT_EQ(spell(bc_first, bc_first.encode("abc")), (S{"a", "bc"}));
  BpeTokenizer ab_first(make_bpe_vocab({{"a", "b"}, {"b", "c"}}));
  EXPECT_EQ(spell(ab_first, ab_first.encode("abc")), (S{"ab", "c"}));
  // Merges chain into longer tokens; pieces never merge across the pre-tokenizer's cuts.
  BpeTokenizer chain(make_bpe_vocab({{"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"},
                                     {" ", "w"}, {"o", "r"}}));
  EXPECT_EQ(spell(chain, chain.encode("hello world")), (S{"hello", " w", "or", "l", "d"}));
  EXPECT_EQ(spell(chain, chain.encode("hel lo")), (S{"he", "l", " ", "l", "o"}));
}

TEST(BpeTokenizer, ShortAndLongMergePathsAgree) {
  // A vocabulary trained on random words over a small alphabet has long merge chains.
  std::mt19937 rng(11);
  auto random_word = [&](size_t n) {
    std::string w;
    for (size_t i = 0; i < n; ++i) w.push_back("aabbbcd"[rng() % 7]);
    return w;
  };
  BpeWordCounts counts;
  for (int i = 0; i < 3000; ++i) counts[random_word(1 + rng() % 12)] += 1 + rng() % 5;
  BpeTrainOptions opt;
  opt.vocab_size = 600;
  BpeVocab vocab = train_bpe(counts, opt);
  ASSERT_GT(vocab.merges.size(), 200u);
  BpeMergeTable table(vocab.merges);
  uint32_t byte_id[256] = {};
  for (uint32_t id = 0; id < vocab.tokens.size(); ++id)
    if (!vocab.special[id] && vocab.tokens[id].size() == 1)
      byte_id[static_cast<unsigned char>(vocab.tokens[id][0])] = id;
  BpeWordMerger merger;
  for (int round = 0; round < 2000; ++round) {
    const std::string word = random_word(1 + rng() % 200);
    Ids short_ids, long_ids;
    for (unsigned char c : word) short_ids.push_back(byte_id[c]);
    long_ids = short_ids;
    merger.merge(table, short_ids, /*heap_from=*/1u << 30);
    merger.merge(table, long_ids, /*heap_from=*/0);
    ASSERT_EQ(short_ids, long_ids) << "word \"" << word << "\"";
  }
}

TEST(BpeTokenizer, RoundTripsValidTextAndAnyBytesWhenKeepingThem) {
  BpeTokenizer tok(make_bpe_vocab({{"t", "h"}, {"th", "e"}, {" ", "the"}, {"\xC3", "\xA9"}}));
  const std::string text = "the cafe\u0301 caf\u00E9 \u65E5\u672C \U0001F600  \n\n\tthe end ";
  EXPECT_EQ(tok.decode(tok.encode(text)), text);
  std::mt19937 rng(3);
  BpeEncodeOptions keep;
  keep.invalid_utf8 = InvalidUtf8::kKeepBytes;
  BpeEncoder enc(tok);
  for (int round = 0; round < 300; ++round) {
    std::string bytes(rng() % 64, '\0');
    for (char& c : bytes) c = static_cast<char>(rng() & 0xFF);
    Ids ids;
    enc.encode(bytes, ids, keep);
    ASSERT_EQ(tok.decode(ids), bytes) << "round " << round;
  }
}

TEST(BpeTokenizer, InvalidUtf8IsAnErrorNamingTheByteUnlessReplacedOrKept) {
  BpeTokenizer tok(make_bpe_vocab({}));
  BpeEncodeOptions opt;
  opt.source = "corpus.txt";
  opt.source_offset = 100;
  try {
    tok.encode("abc\xff" "def", opt);
    FAIL() << "invalid UTF-8 accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("corpus.txt: byte 103: invalid UTF-8 (FF"),
              std::string::npos) << e.what();
  }
  opt.invalid_utf8 = InvalidUtf8::kReplace;
  EXPECT_EQ(tok.encode("a\xff" "b", opt), tok.encode("a\uFFFD" "b"));
  EXPECT_EQ(tok.encode("a\xe2\x82" "b", opt), tok.encode("a\uFFFD" "b"));   // one subpart
  opt.invalid_utf8 = InvalidUtf8::kKeepBytes;
  EXPECT_EQ(tok.decode(tok.encode("a\xe2\x82" "b", opt)), "a\xe2\x82" "b");
}

TEST(BpeTokenizer, SpecialTokensOnlyWhereAsked) {
  BpeTokenizer tok(make_bpe_vocab({{"a", "b"}}));
  const uint32_t eot = tok.eot_id();
  EXPECT_EQ(eot, 0u);
  BpeEncodeOptions special;
  special.allow_special = true;
  const Ids ids = tok.encode("ab<|endoftext|>ab", special);
  EXPECT_EQ(spell(tok, ids), (S{"ab", "<|endoftext|>", "ab"}));
  EXPECT_EQ(tok.encode("<|endoftext|><|endoftext|>", special), (Ids{eot, eot}));
  const Ids plain = tok.encode("ab<|endoftext|>ab");
  EXPECT_EQ(std::count(plain.begin(), plain.end(), eot), 0) << "special text encoded as special";
  EXPECT_EQ(tok.decode(plain), "ab<|endoftext|>ab");
  EXPECT_EQ(tok.decode(ids), "ab<|endoftext|>ab");

  BpeEncoder enc(tok);
  Ids docs;
  std::vector<std::string_view> parts = {"ab", "b", "a"};
  enc.encode_documents(parts, docs);
  EXPECT_EQ(spell(tok, docs), (S{"ab", "<|endoftext|>", "b", "<|endoftext|>", "a"}));

  BpeVocab no_eot = make_bpe_vocab({});
  no_eot.special[0] = 0;
  no_eot.tokens[0] = "zz";
  BpeTokenizer without(std::move(no_eot));
  EXPECT_THROW(without.eot_id(), DataError);
}

TEST(BpeTokenizer, ParallelDocumentsEqualSerial) {
  BpeTokenizer tok(make_bpe_vocab({{"a", "b"}, {" ", "ab"}, {"c", "c"}}));
  std::vector<std::string> texts;
  for (int d = 0; d < 23; ++d) texts.push_back(std::string(d % 4, 'c') + " ab" + std::to_string(d));
  std::vector<std::string_view> docs(texts.begin(), texts.end());
  Ids serial;
  BpeEncoder(tok).encode_documents(docs, serial);
  for (int threads : {1, 2, 3, 7, 40}) {
    EXPECT_EQ(encode_documents_parallel(tok, docs, threads), serial) << threads << " threads";
    EXPECT_EQ(encode_documents_parallel(tok, std::span(docs).first(1), threads),
              tok.encode(docs[0]));
  }
  EXPECT_TRUE(encode_documents_parallel(tok, {}, 4).empty());
  texts[17] += "\xff";
  docs.assign(texts.begin(), texts.end());
  EXPECT_THROW(encode_documents_parallel(tok, docs, 3), DataError);
}

TEST(BpeTokenizer, DecodeRefusesUnknownIds) {
  BpeTokenizer tok(make_bpe_vocab({}));
  try {
    tok.decode(Ids{5, 99999});
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("id 99999 at position 1"), std::string::npos) << e.what();
  }
}

TEST(BpeTokenizer, CacheDoesNotChangeIds) {
  BpeTokenizer tok(make_bpe_vocab({{"a", "b"}, {"ab", "ab"}, {" ", "abab"}}));
  std::string text;
  for (int i = 0; i < 2000; ++i) text += (i % 3 ? " abab" : " ab");
  BpeEncoder tiny_cache(tok, 2);   // emptied every two words
  BpeEncoder no_cache(tok, 0);
  Ids a, b;
  tiny_cache.encode(text, a);
  no_cache.encode(text, b);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, tok.encode(text));
}

TEST(BpeFiles, Gpt2ByteAlphabet) {
  EXPECT_EQ(byte_to_unicode('!'), 0x21u);
  EXPECT_EQ(byte_to_unicode(' '), 0x120u);    // Ġ
  EXPECT_EQ(byte_to_unicode('\n'), 0x10Au);   // Ċ
  EXPECT_EQ(byte_to_unicode(0), 0x100u);
  EXPECT_EQ(byte_to_unicode(0x7F), 0x121u);
  EXPECT_EQ(byte_to_unicode(0xAD), 0x143u);
  EXPECT_EQ(byte_to_unicode(0xE9), 0xE9u);
  for (int b = 0; b < 256; ++b) EXPECT_EQ(unicode_to_byte(byte_to_unicode(b)), b);
  EXPECT_EQ(unicode_to_byte(0x144), -1);
  EXPECT_EQ(unicode_to_byte(' '), -1);
  EXPECT_EQ(bytes_to_mapped(" the\n"), "\u0120the\u010A");
}

TEST(BpeFiles, WriteThenReadGivesTheSameTokenizer) {
  test::TempDir dir;
  BpeVocab v = make_bpe_vocab({{" ", "t"}, {" t", "h"}, {"\"", "\\"}, {"\xE6\x97", "\xA5"}});
  write_bpe_files(v, dir.file("vocab.json"), dir.file("merges.txt"));
  const std::string merges = test::read_file(dir.file("merges.txt"));
  EXPECT_TRUE(merges.starts_with("#version: 0.2\n\u0120 t\n\u0120t h\n")) << merges;
  const std::string vocab_json = test::read_file(dir.file("vocab.json"));
  EXPECT_TRUE(vocab_json.starts_with("{\"<|endoftext|>\":0,\"\u0100\":1,")) << vocab_json;
  EXPECT_NE(vocab_json.find(",\"\\\"\":35,"), std::string::npos) << "'\"' escaped";
  BpeVocab back = read_bpe_files(dir.file("vocab.json"), dir.file("merges.txt"));
  EXPECT_EQ(back.tokens, v.tokens);
  EXPECT_EQ(back.special, v.special);
  ASSERT_EQ(back.merges.size(), v.merges.size());
  for (size_t i = 0; i < v.merges.size(); ++i) {
    EXPECT_EQ(back.merges[i].left, v.merges[i].left) << "merge " << i;
    EXPECT_EQ(back.merges[i].result, v.merges[i].result) << "merge " << i;
  }
  EXPECT_EQ(bpe_fingerprint(back), bpe_fingerprint(v));
  EXPECT_NE(bpe_fingerprint(make_bpe_vocab({{" ", "t"}})), bpe_fingerprint(v));
  // Formatting does not matter to the fingerprint; the content does.
  test::write_file(dir.file("merges2.txt"), "#version: 0.2\r\n" + merges.substr(14) + "\n\n");
  EXPECT_EQ(BpeTokenizer::load(dir.file("vocab.json"), dir.file("merges2.txt")).fingerprint(),
            bpe_fingerprint(v));
}

// The DataError message of parsing these files, or "" when they parse.
std::string parse_error(const std::string& vocab_json, const std::string& merges_txt) {
  try {
    parse_bpe_files(vocab_json, merges_txt, kDefaultSpecials, "vocab.json", "merges.txt");
  } catch (const DataError& e) {
    return e.what();
  }
  return "";
}

TEST(BpeFiles, RefusesInconsistentFilesNamingWhere) {
  BpeVocab v = make_bpe_vocab({{"a", "b"}});
  const std::string vocab = format_vocab_json(v);
  EXPECT_EQ(parse_error(vocab, "#version: 0.2\na b\n"), "");
  auto has = [](const std::string& msg, const std::string& part) {
    return msg.find(part) != std::string::npos;
  };
  EXPECT_TRUE(has(parse_error(vocab, "#version: 0.2\na b\nb c\n"),
                  "merges.txt:3: merging \"b\" and \"c\" makes a token the vocabulary lacks"));
  EXPECT_TRUE(has(parse_error(vocab, "a b\nab q\u0100\n"), "merges.txt:2: \"q\u0100\" is not a token"));
  EXPECT_TRUE(has(parse_error(vocab, "a b c\n"), "merges.txt:1: expected \"left right\""));
  EXPECT_TRUE(has(parse_error("{\"a\": 0", ""), "vocab.json: not valid JSON"));
  EXPECT_TRUE(has(parse_error("[1, 2]", ""), "expected a JSON object"));
  EXPECT_TRUE(has(parse_error("{\"a\":0,\"b\":0}", ""), "vocab.json: id 0 is given to two tokens"));
  EXPECT_TRUE(has(parse_error("{\"a\":5}", ""), "has id 5; ids must be 0..0"));
  EXPECT_TRUE(has(parse_error("{\"a\":0}", ""), "no token for the single byte 0x00"));
  EXPECT_TRUE(has(parse_error("{\"\u00E9\u4E2D\":0}", ""), "U+4E2D, which is not in GPT-2's byte"));
  test::TempDir dir;
  try {
    BpeTokenizer::load(dir.file("missing.json"), dir.file("merges.txt"));
    FAIL();
  } catch (const IoError& e) {
    EXPECT_TRUE(has(e.what(), dir.file("missing.json"))) << e.what();
  }
}

}  // namespace
}  // namespace loom
