// BPE training: hand-checked merges, tie-breaking, determinism, count tables.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "io/bpe_tokenizer.h"
#include "io/bpe_train.h"

namespace loom {
namespace {

// The merges as "left right" in raw bytes.
std::vector<std::string> merges_of(const BpeVocab& v) {
  std::vector<std::string> out;
  for (const BpeMerge& m : v.merges) out.push_back(v.tokens[m.left] + " " + v.tokens[m.right]);
  return out;
}
using S = std::vector<std::string>;

BpeTrainOptions options(size_t vocab_size, uint64_t min_frequency) {
  BpeTrainOptions opt;
  opt.vocab_size = vocab_size;
  opt.min_frequency = min_frequency;
  return opt;
}

TEST(BpeTrain, HighestCountFirstUntilMinFrequency) {
  // (a,b) 5 + 3 = 8, (b,c) 3 + 1 = 4; then (ab,c) 3, (b,c) 1.
  BpeWordCounts counts{{"ab", 5}, {"abc", 3}, {"bc", 1}};
  BpeVocab v = train_bpe(counts, options(1000, 2));
  EXPECT_EQ(merges_of(v), (S{"a b", "ab c"}));
  EXPECT_EQ(merges_of(train_bpe(counts, options(1000, 1))), (S{"a b", "ab c", "b c"}));
  // Ids: the special token, the 256 bytes, then the new tokens in order.
  ASSERT_EQ(v.tokens.size(), 1u + 256u + 2u);
  EXPECT_EQ(v.tokens[0], "<|endoftext|>");
  EXPECT_EQ(v.special[0], 1);
  EXPECT_EQ(v.tokens[1], "!");            // bytes ordered by their mapped code point
  EXPECT_EQ(v.tokens[257], "ab");
  EXPECT_EQ(v.tokens[258], "abc");
  // vocab_size counts every token: room for one merge only.
  EXPECT_EQ(merges_of(train_bpe(counts, options(258, 1))), (S{"a b"}));
  EXPECT_THROW(train_bpe(counts, options(256, 1)), ConfigError);
}

TEST(BpeTrain, TiesGoToTheSmallerPairOfIds) {
  BpeWordCounts counts{{"cd", 2}, {"ab", 2}, {"xy", 2}, {"b!", 2}};
  // Pairs compare by left id, then right id: (a,b) < (b,!) < (c,d) < (x,y), although '!'
  // has the smallest id of all bytes.
  EXPECT_EQ(merges_of(train_bpe(counts, options(1000, 1))), (S{"a b", "b !", "c d", "x y"}));
}

TEST(BpeTrain, OverlappingPairsCountEveryPosition) {
  // "aaaa" has (a,a) three times: 3 x 2 = 6 > (b,c) x 5; merged left to right -> "aa aa".
  BpeWordCounts counts{{"aaaa", 2}, {"bc", 5}};
  BpeVocab v = train_bpe(counts, options(1000, 1));
  EXPECT_EQ(merges_of(v), (S{"a a", "b c", "aa aa"}));
  BpeTokenizer tok(std::move(v));
  ASSERT_EQ(tok.encode("aaaa").size(), 1u);
  EXPECT_EQ(tok.encode("aaa").size(), 2u);
}

TEST(BpeTrain, ResultDoesNotDependOnHowCountingWasSplit) {
  const std::string text =
      "The quick brown fox jumps over the lazy dog. The dog didn't care; the fox did!\n"
      "Der schnelle braune Fuchs springt über den faulen Hund. 日本語のテキスト 123 4567\n";
  std::string corpus;
  for (int i = 0; i < 40; ++i) corpus += text;
  BpeWordCounts whole;
  count_bpe_words(corpus, whole);
  // Three "ranks" count a third each (cut at line starts), merged in another order.
  const size_t third = corpus.size() / 3;
  const size_t cut1 = corpus.find('\n', third) + 1, cut2 = corpus.find('\n', 2 * third) + 1;
  BpeWordCounts r0, r1, r2, merged;
  count_bpe_words(corpus.substr(0, cut1), r0);
  count_bpe_words(corpus.substr(cut1, cut2 - cut1), r1);
  count_bpe_words(corpus.substr(cut2), r2);
  merge_word_counts(merged, r2);
  deserialize_word_counts(serialize_word_counts(r0), merged);
  merge_word_counts(merged, r1);
  EXPECT_EQ(merged, whole);
  BpeVocab a = train_bpe(whole, options(400, 2));
  BpeVocab b = train_bpe(merged, options(400, 2));
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(merges_of(a), merges_of(b));
  EXPECT_EQ(bpe_fingerprint(a), bpe_fingerprint(b));
  EXPECT_GT(a.tokens.size(), 300u);   // every word is one token before 400
  // The learned tokenizer round-trips and makes frequent words single tokens.
  BpeTokenizer tok(std::move(a));
  EXPECT_EQ(tok.decode(tok.encode(corpus)), corpus);
  EXPECT_EQ(tok.encode(" quick").size(), 1u);
  EXPECT_LT(tok.encode(corpus).size(), corpus.size() / 3);
}

TEST(BpeTrain, SerializedCountsAreCanonicalAndChecked) {
  BpeWordCounts a{{"x", 1}, {" the", 7}, {std::string("\0z", 2), 2}};
  BpeWordCounts b;
  b[std::string("\0z", 2)] = 2;
  b[" the"] = 7;
  b["x"] = 1;
  const std::string bytes = serialize_word_counts(a);
  EXPECT_EQ(bytes, serialize_word_counts(b));
  BpeWordCounts back;
  deserialize_word_counts(bytes, back);
  EXPECT_EQ(back, a);
  auto error_of = [](std::string_view damaged) -> std::string {
    BpeWordCounts sink;
    try {
      deserialize_word_counts(damaged, sink, "rank 2");
    } catch (const DataError& e) {
      return e.what();
    }
    return "";
  };
  EXPECT_NE(error_of(bytes.substr(0, bytes.size() - 3)).find("rank 2: byte"), std::string::npos);
  EXPECT_NE(error_of("XXXX" + bytes.substr(4)).find("bad magic"), std::string::npos);
  EXPECT_NE(error_of(bytes + "!").find("after the table"), std::string::npos);
}

TEST(BpeTrain, CountingAppliesTheUtf8Policy) {
  BpeWordCounts counts;
  BpeCountOptions opt;
  opt.source = "wiki.txt";
  EXPECT_THROW(count_bpe_words("ok \xC3", counts, opt), DataError);
  opt.invalid_utf8 = InvalidUtf8::kReplace;
  count_bpe_words("ok \xC3", counts, opt);
  EXPECT_EQ(counts.at(" \uFFFD"), 1u);
}

}  // namespace
}  // namespace loom
