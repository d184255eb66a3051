// BertExamples: BERT's sentence pairs and masking over token shards (Note [BERT examples]).
// Text token k of the synthetic streams has id kFirstText + k (k its stream offset), so an
// example's tokens say exactly where in the stream, and so in which document and sentence,
// they were read from. The instance table is compared with a literal transcription of
// create_instances_from_document (google-research/bert), with loom's one change to it
// (Note [BERT examples]: chunks of one sentence), over vectors of sentences.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/rng.h"
#include "io/bert_examples.h"
#include "io/feistel_permutation.h"
#include "io/token_shard.h"
#include "io/token_windows.h"
#include "tests/io/bert_corpus.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

using test::Corpus;
using test::Document;
using test::Sentence;
using test::is_special;
using test::kFirstText;
using test::kSpecial;
using test::kVocab;
using test::make_corpus;
using test::options;
using test::unmasked;
using test::write_stream;

// ---- the reference: create_instances_from_document, transcribed ------------------------

struct RefInstance {
  Sentence a, b;
  bool random_next = false;
  bool chunk_of_one = false;   // NotNext was forced (a document's last sentence of one token)
};

void truncate_seq_pair(Sentence& a, Sentence& b, int64_t max_num_tokens, Rng& rng) {
  while (true) {
    const int64_t total_length = static_cast<int64_t>(a.size() + b.size());
    if (total_length <= max_num_tokens) break;
    Sentence& trunc_tokens = a.size() > b.size() ? a : b;
    if (rng.uniform() < 0.5)
      trunc_tokens.erase(trunc_tokens.begin());
    else
      trunc_tokens.pop_back();
  }
}

// Python's rng.random() is rng.uniform(), randint(a, b) is a + below(b - a + 1); the random
// document is one draw over the others (Note [BERT examples]).
std::vector<RefInstance> reference_instances(const std::vector<Document>& all_documents,
                                             const BertDataOptions& o, uint64_t split) {
  Rng rng(o.seed, split, RngPurpose::kData);
  auto randint = [&rng](int64_t a, int64_t b) {
    return a + static_cast<int64_t>(rng.below(static_cast<uint64_t>(b - a + 1)));
  };
  std::vector<RefInstance> instances;
  const auto num_docs = static_cast<int64_t>(all_documents.size());
  for (int64_t document_index = 0; document_index < num_docs; ++document_index) {
    const Document& document = all_documents[static_cast<size_t>(document_index)];
    const int64_t max_num_tokens = o.max_seq_len - 3;
    int64_t target_seq_length = max_num_tokens;
    if (rng.uniform() < o.short_seq_prob) target_seq_length = randint(2, max_num_tokens);
    auto random_b = [&](RefInstance& inst) {
      inst.random_next = true;
      const int64_t target_b_length = target_seq_length - static_cast<int64_t>(inst.a.size());
      auto random_document_index = static_cast<int64_t>(rng.below(static_cast<uint64_t>(num_docs - 1)));
      if (random_document_index >= document_index) ++random_document_index;
      const Document& random_document = all_documents[static_cast<size_t>(random_document_index)];
      const int64_t random_start = randint(0, static_cast<int64_t>(random_document.size()) - 1);
      for (size_t j = static_cast<size_t>(random_start); j < random_document.size(); ++j) {
        inst.b.insert(inst.b.end(), random_document[j].begin(), random_document[j].end());
        if (static_cast<int64_t>(inst.b.size()) >= target_b_length) break;
      }
    };
    std::vector<const Sentence*> current_chunk;
    int64_t current_length = 0;
    int64_t i = 0;
    const auto last = static_cast<int64_t>(document.size()) - 1;
    while (i <= last) {
      const Sentence& segment = document[static_cast<size_t>(i)];
      current_chunk.push_back(&segment);
      current_length += static_cast<int64_t>(segment.size());
      if (i == last || current_length >= target_seq_length) {
        // loom's change (Note [BERT examples]): a chunk of one sentence takes the next one.
        if (current_chunk.size() == 1 && i != last) {
          ++i;
          current_chunk.push_back(&document[static_cast<size_t>(i)]);
          current_length += static_cast<int64_t>(document[static_cast<size_t>(i)].size());
        }
        const auto chunk = static_cast<int64_t>(current_chunk.size());
        RefInstance inst;
        if (chunk == 1 && current_length >= 2) {   // the last sentence alone: whole or split
          if (rng.uniform() < o.random_next_prob) {
            inst.a = segment;
            random_b(inst);
          } else {
            const int64_t cut = randint(1, current_length - 1);
            inst.a.assign(segment.begin(), segment.begin() + cut);
            inst.b.assign(segment.begin() + cut, segment.end());
          }
          truncate_seq_pair(inst.a, inst.b, max_num_tokens, rng);
          instances.push_back(std::move(inst));
          break;
        }
        int64_t a_end = 1;
        if (chunk >= 2) a_end = randint(1, chunk - 1);
        for (int64_t j = 0; j < a_end; ++j)
          inst.a.insert(inst.a.end(), current_chunk[j]->begin(), current_chunk[j]->end());
        inst.chunk_of_one = chunk == 1;
        if (chunk == 1 || rng.uniform() < o.random_next_prob) {
          random_b(inst);
          i -= chunk - a_end;
        } else {
          for (int64_t j = a_end; j < chunk; ++j)
            inst.b.insert(inst.b.end(), current_chunk[j]->begin(), current_chunk[j]->end());
        }
        truncate_seq_pair(inst.a, inst.b, max_num_tokens, rng);
        instances.push_back(std::move(inst));
        current_chunk.clear();
        current_length = 0;
      }
      ++i;
    }
  }
  return instances;
}

// Instance `inst`'s A and B, read through example() at an index that visits it.
void expect_matches_reference(const BertExamples& ex, const std::vector<RefInstance>& ref) {
  ASSERT_EQ(ex.examples_per_epoch(), static_cast<int64_t>(ref.size()));
  BertExample e(ex.options());
  for (int64_t g = 0; g < ex.examples_per_epoch(); ++g) {
    ex.example(g, e);
    const RefInstance& r = ref[static_cast<size_t>(ex.instance_of(g))];
    const std::vector<int32_t> ids = unmasked(e);
    const Sentence a(ids.begin() + 1, ids.begin() + 1 + e.a_length);
    const Sentence b(ids.begin() + 2 + e.a_length, ids.begin() + e.length - 1);
    ASSERT_EQ(a, r.a) << "A of example " << g << " (instance " << ex.instance_of(g) << ")";
    ASSERT_EQ(b, r.b) << "B of example " << g << " (instance " << ex.instance_of(g) << ")";
    ASSERT_EQ(e.nsp_label, r.random_next ? 1 : 0) << "example " << g;
  }
}

TEST(BertExamples, TableEqualsTheOriginalAlgorithmTranscribed) {
  test::TempDir dir;
  const Corpus c = make_corpus(300, 11, 12, 24);
  auto stream = write_stream(dir, c.tokens);
  for (const int64_t t : {128, 32, 12}) {
    for (const double short_prob : {0.1, 0.6}) {
      SCOPED_TRACE("max_seq_len " + std::to_string(t) + ", short_seq_prob " + std::to_string(short_prob));
      BertDataOptions o = options(t, 5);
      o.short_seq_prob = short_prob;
      BertExamples ex(stream, 0, stream->size(), o);
      EXPECT_EQ(ex.documents(), 300);
      expect_matches_reference(ex, reference_instances(c.docs, o, 0));
    }
  }
}

TEST(BertExamples, LayoutSegmentsAndLengthsAreConsistent) {
  test::TempDir dir;
  const Corpus c = make_corpus(200, 3, 10, 30);
  auto stream = write_stream(dir, c.tokens);
  const BertDataOptions o = options(64, 9);
  BertExamples ex(stream, 0, stream->size(), o);
  BertExample e(o);
  for (int64_t g = 0; g < 3 * ex.examples_per_epoch(); ++g) {
    ex.example(g, e);
    const std::vector<int32_t> ids = unmasked(e);
    const int64_t a = e.a_length, len = e.length, b = len - a - 3;
    ASSERT_GE(a, 1) << "example " << g;
    ASSERT_GE(b, 1) << "example " << g;
    ASSERT_LE(len, 64) << "example " << g;
    for (int64_t p = 0; p < 64; ++p) {
      const int32_t want_segment = p >= a + 2 && p < len ? 1 : 0;
      ASSERT_EQ(e.segment_ids[p], want_segment) << "example " << g << " position " << p;
      if (p == 0) {
        ASSERT_EQ(ids[p], kSpecial.cls) << "example " << g;
      } else if (p == a + 1 || p == len - 1) {
        ASSERT_EQ(ids[p], kSpecial.sep) << "example " << g << " position " << p;
      } else if (p >= len) {
        ASSERT_EQ(ids[p], kSpecial.pad) << "example " << g << " position " << p;
        ASSERT_EQ(e.input_ids[p], kSpecial.pad) << "example " << g << " position " << p;
      } else {
        ASSERT_FALSE(is_special(ids[p])) << "example " << g << " position " << p << " id " << ids[p];
      }
    }
  }
}

// Positions of A or B in the stream: consecutive, skipping only the [SEP]s between sentences.
void expect_contiguous(const Corpus& c, const std::vector<int32_t>& seg, int64_t g, const char* name) {
  for (size_t k = 1; k < seg.size(); ++k) {
    const int32_t p = seg[k - 1] - kFirstText, q = seg[k] - kFirstText;
    const bool next = q == p + 1, over_sep = q == p + 2 && c.tokens[p + 1] == kSpecial.sep;
    ASSERT_TRUE(next || over_sep) << name << " of example " << g << ": stream offset " << q
                                  << " follows " << p;
  }
}

TEST(BertExamples, IsNextContinuesTheDocumentAndNotNextComesFromAnother) {
  test::TempDir dir;
  const Corpus c = make_corpus(300, 21, 12, 24);
  auto stream = write_stream(dir, c.tokens);
  const BertDataOptions o = options(64, 4);
  BertExamples ex(stream, 0, stream->size(), o);
  BertExample e(o);
  int64_t is_next = 0, untruncated_is_next = 0, split_is_next = 0;
  for (int64_t g = 0; g < ex.examples_per_epoch(); ++g) {
    ex.example(g, e);
    const std::vector<int32_t> ids = unmasked(e);
    const std::vector<int32_t> a(ids.begin() + 1, ids.begin() + 1 + e.a_length);
    const std::vector<int32_t> b(ids.begin() + 2 + e.a_length, ids.begin() + e.length - 1);
    expect_contiguous(c, a, g, "A");
    expect_contiguous(c, b, g, "B");
    const int32_t a_first = a.front() - kFirstText, a_last = a.back() - kFirstText;
    const int32_t b_first = b.front() - kFirstText, b_last = b.back() - kFirstText;
    ASSERT_EQ(c.doc_of[a_first], c.doc_of[a_last]) << "A crosses documents in example " << g;
    ASSERT_EQ(c.doc_of[b_first], c.doc_of[b_last]) << "B crosses documents in example " << g;
    if (e.nsp_label == 1) {
      ASSERT_NE(c.doc_of[a_first], c.doc_of[b_first]) << "NotNext B from A's document, example " << g;
      continue;
    }
    ++is_next;
    ASSERT_EQ(c.doc_of[a_first], c.doc_of[b_first]) << "IsNext B from another document, example " << g;
    ASSERT_GT(b_first, a_last) << "IsNext B before A's end, example " << g;
    if (e.length - 3 < o.max_seq_len - 3) {
      // Not truncated: A starts and B ends a sentence; B's first token comes right after
      // A's last, the next sentence's or (a document's last sentence split in two) the
      // same sentence's.
      ++untruncated_is_next;
      ASSERT_TRUE(a_first == 0 || c.tokens[a_first - 1] == kSpecial.sep ||
                  c.tokens[a_first - 1] == kSpecial.cls) << "A starts mid-sentence, example " << g;
      ASSERT_EQ(c.tokens[b_last + 1], kSpecial.sep) << "B ends mid-sentence, example " << g;
      if (b_first == a_last + 1) {
        ++split_is_next;
        ASSERT_EQ(c.tokens[b_last + 2], kSpecial.cls) << "a split sentence that is not its "
                                                      << "document's last, example " << g;
      } else {
        ASSERT_EQ(b_first, a_last + 2) << "IsNext B is not the next sentence, example " << g;
      }
    }
  }
  EXPECT_GT(is_next, 100);
  EXPECT_GT(untruncated_is_next, 20);
  EXPECT_GT(split_is_next, 5);
}

// Every pair is NotNext with probability random_next_prob, an independent draw, except a
// document's last sentence of one token left alone (forced): a binomial count within 4
// sigma. Two corpora: short sentences, and sentences long against the target, where the
// original recipe's forced NotNext for chunks of one sentence would dominate.
TEST(BertExamples, NextSentenceRateIsRandomNextProb) {
  struct Case { int docs, max_sentences, max_len; int64_t max_seq_len; };
  for (const Case& k : {Case{1000, 14, 16, 32}, Case{1500, 6, 40, 24}}) {
    test::TempDir dir;
    const Corpus c = make_corpus(k.docs, 8, k.max_sentences, k.max_len);
    auto stream = write_stream(dir, c.tokens);
    for (const double rnp : {0.5, 0.3}) {
      BertDataOptions o = options(k.max_seq_len, 13);
      o.random_next_prob = rnp;
      BertExamples ex(stream, 0, stream->size(), o);
      const std::vector<RefInstance> ref = reference_instances(c.docs, o, 0);
      ASSERT_EQ(ex.examples_per_epoch(), static_cast<int64_t>(ref.size()));
      int64_t trials = 0, not_next = 0, forced = 0;
      for (int64_t i = 0; i < ex.examples_per_epoch(); ++i) {
        const BertPair pr = ex.pair(i);
        if (ref[static_cast<size_t>(i)].chunk_of_one) {
          ++forced;
          EXPECT_TRUE(pr.random_next) << "instance " << i;
          continue;
        }
        ++trials;
        not_next += pr.random_next ? 1 : 0;
      }
      const double mean = rnp * static_cast<double>(trials);
      const double sigma = std::sqrt(static_cast<double>(trials) * rnp * (1 - rnp));
      std::printf("[bert] max_len %d, random_next_prob %.2f: %lld NotNext of %lld free choices "
                  "(%.4f), expected %.1f +- 4 * %.1f; %lld forced\n",
                  k.max_len, rnp, static_cast<long long>(not_next),
                  static_cast<long long>(trials),
                  static_cast<double>(not_next) / static_cast<double>(trials), mean, sigma,
                  static_cast<long long>(forced));
      EXPECT_GT(trials, 1500);
      // The synthetic sentences have one token 1 time in max_len: about 1 % of the pairs.
      EXPECT_LT(forced * 50, trials) << "more than 2 % of the pairs forced NotNext";
      EXPECT_NEAR(static_cast<double>(not_next), mean, 4 * sigma) << "random_next_prob " << rnp;
    }
  }
}

// 20,000 examples: the count of predictions is exact (the cap P = 15 binds from length 97
// on); the chosen positions are uniform over the candidates; the 80/10/10 split within
// 4-sigma binomial bounds.
TEST(BertExamples, MaskingFollowsTheRecipe) {
  test::TempDir dir;
  const Corpus c = make_corpus(300, 5, 12, 24);
  auto stream = write_stream(dir, c.tokens);
  BertDataOptions o = options(128, 17);
  o.max_predictions_per_seq = 15;
  const int64_t cap = o.max_predictions_per_seq;
  BertExamples ex(stream, 0, stream->size(), o);
  BertExample e(o);
  constexpr int kExamples = 20000, kBuckets = 10;
  int64_t chosen = 0, candidates_total = 0, masked = 0, kept = 0, replaced = 0, capped = 0;
  double bucket_expect[kBuckets] = {}, bucket_var[kBuckets] = {};
  int64_t bucket_count[kBuckets] = {};
  for (int64_t g = 0; g < kExamples; ++g) {
    ex.example(g, e);
    const std::vector<int32_t> ids = unmasked(e);
    const int64_t m = e.length - 3;
    const auto want = std::min<int64_t>(
        {cap, std::max<int64_t>(1, static_cast<int64_t>(std::nearbyint(e.length * 0.15))), m});
    ASSERT_EQ(e.num_predictions, want) << "example " << g << " of length " << e.length;
    capped += want == cap ? 1 : 0;
    chosen += want;
    candidates_total += m;
    int64_t dense = 0;
    for (int64_t p = 0; p < o.max_seq_len; ++p) {
      if (e.labels[p] < 0) {
        ASSERT_EQ(e.input_ids[p], ids[p]) << "unpredicted position changed, example " << g;
        continue;
      }
      ++dense;
      ASSERT_FALSE(is_special(ids[p])) << "special token chosen at " << p << ", example " << g;
      ASSERT_TRUE(p >= 1 && p < e.length - 1 && p != e.a_length + 1) << "example " << g;
    }
    ASSERT_EQ(dense, want) << "example " << g;
    for (int64_t k = 0; k < cap; ++k) {
      if (k >= want) {
        ASSERT_EQ(e.mlm_positions[k], 0) << "padding of example " << g;
        ASSERT_EQ(e.mlm_labels[k], -1) << "padding of example " << g;
        continue;
      }
      const int32_t p = e.mlm_positions[k];
      if (k > 0) {
        ASSERT_GT(p, e.mlm_positions[k - 1]) << "positions not ascending, example " << g;
      }
      ASSERT_EQ(e.mlm_labels[k], e.labels[p]) << "example " << g;
      ASSERT_EQ(e.mlm_labels[k], ids[p]) << "example " << g;
      const int32_t in = e.input_ids[p];
      if (in == kSpecial.mask) {
        ++masked;
      } else if (in == ids[p]) {
        ++kept;
      } else {
        ++replaced;
        ASSERT_FALSE(is_special(in)) << "a random replacement is special, example " << g;
        ASSERT_TRUE(in >= 0 && in < kVocab) << "example " << g;
      }
    }
    // Candidate k (A then B) is chosen with probability want / m.
    for (int64_t k = 0; k < m; ++k) {
      const int64_t bucket = k * kBuckets / m;
      const double p = static_cast<double>(want) / static_cast<double>(m);
      bucket_expect[bucket] += p;
      bucket_var[bucket] += p * (1 - p);
      const int64_t pos = k < e.a_length ? 1 + k : 2 + k;
      bucket_count[bucket] += e.labels[pos] >= 0 ? 1 : 0;
    }
  }
  std::printf("[bert] %d examples: %lld predictions of %lld non-special tokens (%.4f), %lld at "
              "the cap; [MASK] %.4f, kept %.4f, random %.4f\n",
              kExamples, static_cast<long long>(chosen), static_cast<long long>(candidates_total),
              static_cast<double>(chosen) / static_cast<double>(candidates_total),
              static_cast<long long>(capped), static_cast<double>(masked) / chosen,
              static_cast<double>(kept) / chosen, static_cast<double>(replaced) / chosen);
  auto within = [&](int64_t count, double p, const char* what) {
    const double n = static_cast<double>(chosen);
    EXPECT_NEAR(static_cast<double>(count), n * p, 4 * std::sqrt(n * p * (1 - p))) << what;
  };
  within(masked, 0.8, "[MASK]");
  within(kept, 0.1, "kept");
  within(replaced, 0.1, "random");
  // Sampling without replacement: the binomial variance bounds the hypergeometric one.
  for (int b = 0; b < kBuckets; ++b)
    EXPECT_NEAR(static_cast<double>(bucket_count[b]), bucket_expect[b], 4 * std::sqrt(bucket_var[b]))
        << "relative candidate position bucket " << b;
  EXPECT_GT(capped, kExamples / 10) << "the cap was not exercised";
}

TEST(BertExamples, RandomReplacementsCoverTheNonSpecialIdsUniformly) {
  // A vocabulary of 12 ids, 5 special: random replacements hit each of the 7 others.
  test::TempDir dir;
  std::vector<int32_t> tokens;
  std::mt19937_64 gen(1);
  BertSpecialIds sp{3, 0, 11, 6, 7};
  const std::vector<int32_t> text = {1, 2, 4, 5, 8, 9, 10};
  for (int d = 0; d < 40; ++d) {
    for (int s = 0; s < 4; ++s) {
      for (int k = 0; k < 10; ++k) tokens.push_back(text[gen() % text.size()]);
      tokens.push_back(sp.sep);
    }
    tokens.push_back(sp.cls);
  }
  std::vector<TokenShard> shards;
  {
    TokenShardWriter w(dir.file("small.tokens"), 12, 1);
    std::vector<uint32_t> ids(tokens.begin(), tokens.end());
    w.append(ids);
    w.commit();
    shards.push_back(TokenShard::open(dir.file("small.tokens")));
  }
  auto stream = std::make_shared<const TokenStream>(std::move(shards));
  BertDataOptions o;
  o.max_seq_len = 64;
  o.seed = 2;
  o.vocab_size = 12;
  o.special = sp;
  o.masked_lm_prob = 1.0;   // every candidate (up to P = max_seq_len)
  o.max_predictions_per_seq = 64;
  BertExamples ex(stream, 0, stream->size(), o);
  BertExample e(o);
  std::vector<int64_t> hits(12, 0);
  int64_t replaced = 0, predictions = 0;
  for (int64_t g = 0; g < 4000; ++g) {
    ex.example(g, e);
    ASSERT_EQ(e.num_predictions, e.length - 3) << "masked_lm_prob 1 predicts every candidate";
    predictions += e.num_predictions;
    for (int64_t k = 0; k < e.num_predictions; ++k) {
      const int32_t in = e.input_ids[e.mlm_positions[k]];
      if (in == sp.mask) continue;
      // kept or random; a random draw equal to the original counts as kept here, which
      // the expected counts below allow for.
      if (in != e.mlm_labels[k]) {
        ++replaced;
        ++hits[in];
      }
    }
  }
  for (int32_t id : {sp.pad, sp.unk, sp.cls, sp.sep, sp.mask}) EXPECT_EQ(hits[id], 0) << "id " << id;
  // Each non-special id is a random replacement with probability 0.1 * 1/7 per prediction,
  // less the 1/7 of draws that equal the original (text ids are uniform): 0.1 * 6/49.
  for (int32_t id : text) {
    const double p = 0.1 * 6.0 / 49.0, n = static_cast<double>(predictions);
    EXPECT_NEAR(static_cast<double>(hits[id]), n * p, 4 * std::sqrt(n * p * (1 - p))) << "id " << id;
  }
  EXPECT_GT(replaced, 0);
}

TEST(BertExamples, SameExampleInAnyOrderThreadOrBuild) {
  test::TempDir dir;
  const Corpus c = make_corpus(150, 2, 10, 30);
  auto stream = write_stream(dir, c.tokens);
  const BertDataOptions o = options(96, 23);
  constexpr int64_t kCount = 4000;
  auto run = [&](const BertExamples& ex, const std::vector<int64_t>& order) {
    std::vector<std::vector<int32_t>> rows(kCount);
    BertExample e(o);
    for (int64_t g : order) {
      ex.example(g, e);
      std::vector<int32_t>& r = rows[static_cast<size_t>(g)];
      r = e.input_ids;
      r.insert(r.end(), e.segment_ids.begin(), e.segment_ids.end());
      r.insert(r.end(), e.labels.begin(), e.labels.end());
      r.insert(r.end(), e.mlm_positions.begin(), e.mlm_positions.end());
      r.insert(r.end(), e.mlm_labels.begin(), e.mlm_labels.end());
      r.push_back(static_cast<int32_t>(e.length));
      r.push_back(e.nsp_label);
    }
    return rows;
  };
  std::vector<int64_t> forward(kCount);
  for (int64_t g = 0; g < kCount; ++g) forward[g] = g;
  std::vector<int64_t> shuffled = forward;
  std::shuffle(shuffled.begin(), shuffled.end(), std::mt19937_64(3));

  BertExamples first(stream, 0, stream->size(), o);
  const auto expected = run(first, forward);
  EXPECT_EQ(run(first, shuffled), expected) << "the order of calls changed an example";
  BertExamples again(stream, 0, stream->size(), o);   // another rank, or after a resume
  EXPECT_EQ(run(again, shuffled), expected) << "a second build of the table differs";
  // The token stage writes one part file per rank: the same stream in 1 or 2 shards.
  for (const int shards : {1, 2}) {
    test::TempDir other_dir;
    auto restream = write_stream(other_dir, c.tokens, shards);
    BertExamples resharded(restream, 0, restream->size(), o);
    EXPECT_EQ(run(resharded, forward), expected) << "the stream in " << shards << " shards differs";
  }

  // Four threads on one table, interleaved indices.
  std::vector<std::vector<std::vector<int32_t>>> parts(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      std::vector<int64_t> mine;
      for (int64_t g = t; g < kCount; g += 4) mine.push_back(g);
      parts[t] = run(first, mine);
    });
  for (auto& th : threads) th.join();
  for (int64_t g = 0; g < kCount; ++g)
    ASSERT_EQ(parts[g % 4][static_cast<size_t>(g)], expected[static_cast<size_t>(g)])
        << "example " << g << " from thread " << g % 4;

  // World sizes 1, 2, 3: the ranks' slices of each global batch are the global batch.
  for (int world = 1; world <= 3; ++world) {
    for (int64_t step = 0; step < 10; ++step) {
      std::vector<int64_t> seen;
      for (int rank = 0; rank < world; ++rank) {
        const WindowSlice s = rank_slice(step, 32, rank, world);
        for (int64_t k = 0; k < s.count; ++k) seen.push_back(s.begin + k);
      }
      for (size_t k = 0; k < seen.size(); ++k)
        ASSERT_EQ(seen[k], step * 32 + static_cast<int64_t>(k)) << "world " << world;
    }
  }

  // Epochs visit every instance once each, in another order; another seed differs.
  const int64_t n = first.examples_per_epoch();
  std::vector<int64_t> epoch0, epoch1;
  for (int64_t i = 0; i < n; ++i) {
    epoch0.push_back(first.instance_of(i));
    epoch1.push_back(first.instance_of(n + i));
  }
  EXPECT_NE(epoch0, epoch1);
  std::sort(epoch0.begin(), epoch0.end());
  std::sort(epoch1.begin(), epoch1.end());
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(epoch0[i], i);
    ASSERT_EQ(epoch1[i], i);
  }
  BertDataOptions other = o;
  other.seed = 24;
  BertExamples another(stream, 0, stream->size(), other);
  EXPECT_NE(run(another, forward), expected) << "the seed does not matter";
}

TEST(BertExamples, HeldOutDocumentsAreNeverReadByTraining) {
  test::TempDir dir;
  const Corpus c = make_corpus(300, 31, 12, 24);
  auto stream = write_stream(dir, c.tokens);
  const BertDataOptions o = options(64, 6);
  const BertSplits s = split_bert_examples(stream, 0.1, o);
  ASSERT_TRUE(s.heldout.has_value());
  ASSERT_GT(s.split, 0u);
  ASSERT_EQ(c.tokens[s.split - 1], kSpecial.cls) << "the split is not a document start";
  const uint64_t wanted = c.tokens.size() - static_cast<uint64_t>(std::floor(c.tokens.size() * 0.1));
  EXPECT_LE(s.split, wanted);
  EXPECT_EQ(c.doc_of[s.split], c.doc_of[wanted]) << "the split is not the start of token N - held's document";
  const int32_t first_held = c.doc_of[s.split];
  EXPECT_EQ(s.train.documents(), first_held);
  EXPECT_EQ(s.heldout->documents(), 300 - first_held);

  BertExample e(o);
  for (int64_t g = 0; g < 3 * s.train.examples_per_epoch(); ++g) {
    s.train.example(g, e);
    const std::vector<int32_t> ids = unmasked(e);
    for (int64_t p = 0; p < e.length; ++p)
      if (!is_special(ids[p])) {
        ASSERT_LT(c.doc_of[ids[p] - kFirstText], first_held) << "training example " << g;
      }
  }
  const int64_t n = s.heldout->examples_per_epoch();
  for (int64_t g = 0; g < 2 * n; ++g) {
    ASSERT_EQ(s.heldout->instance_of(g), g % n) << "held-out order is not sequential";
    s.heldout->example(g, e);
    const std::vector<int32_t> ids = unmasked(e);
    for (int64_t p = 0; p < e.length; ++p)
      if (!is_special(ids[p])) {
        ASSERT_GE(c.doc_of[ids[p] - kFirstText], first_held) << "held-out example " << g;
      }
  }
  // The held-out table is the reference over the held-out documents (split 1).
  const std::vector<Document> held(c.docs.begin() + first_held, c.docs.end());
  expect_matches_reference(*s.heldout, reference_instances(held, o, 1));

  const BertSplits none = split_bert_examples(stream, 0.0, o);
  EXPECT_FALSE(none.heldout.has_value());
  EXPECT_EQ(none.train.documents(), 300);
  EXPECT_THROW(split_bert_examples(stream, 1.0, o), ConfigError);
}

// ---- refusals -------------------------------------------------------------------------

// The DataError of building over `tokens` (which must fail), its message.
std::string refusal(const std::vector<int32_t>& tokens, const BertDataOptions& o) {
  test::TempDir dir;
  auto stream = write_stream(dir, tokens, 2);
  try {
    BertExamples ex(stream, 0, stream->size(), o);
  } catch (const DataError& err) {
    return err.what();
  }
  ADD_FAILURE() << "no DataError";
  return "";
}

TEST(BertExamples, RefusesAMalformedStreamNamingTheOffset) {
  const Corpus c = make_corpus(20, 1, 5, 10);
  const BertDataOptions o = options(64, 1);
  const std::vector<int32_t>& good = c.tokens;
  const auto n = static_cast<int64_t>(good.size());
  auto has = [](const std::string& msg, const std::string& part) {
    return msg.find(part) != std::string::npos;
  };
  {  // the last [CLS] missing
    std::vector<int32_t> t(good.begin(), good.end() - 1);
    const std::string msg = refusal(t, o);
    EXPECT_TRUE(has(msg, "stream offset " + std::to_string(n - 2)) && has(msg, "without [CLS]")) << msg;
    EXPECT_TRUE(has(msg, "part-1.tokens")) << msg;
  }
  {  // an empty sentence: [SEP] [SEP]
    std::vector<int32_t> t = good;
    const auto sep = std::find(t.begin() + 5, t.end(), kSpecial.sep) - t.begin();
    t.insert(t.begin() + sep + 1, kSpecial.sep);
    const std::string msg = refusal(t, o);
    EXPECT_TRUE(has(msg, "stream offset " + std::to_string(sep + 1)) && has(msg, "empty sentence")) << msg;
  }
  {  // a document's last sentence without its [SEP]
    std::vector<int32_t> t = good;
    const auto cls = std::find(t.begin(), t.end(), kSpecial.cls) - t.begin();
    t.erase(t.begin() + cls - 1);
    const std::string msg = refusal(t, o);
    EXPECT_TRUE(has(msg, "stream offset " + std::to_string(cls - 1)) && has(msg, "no [SEP]")) << msg;
  }
  {  // an empty document: [CLS] [CLS]
    std::vector<int32_t> t = good;
    const auto cls = std::find(t.begin(), t.end(), kSpecial.cls) - t.begin();
    t.insert(t.begin() + cls + 1, kSpecial.cls);
    const std::string msg = refusal(t, o);
    EXPECT_TRUE(has(msg, "stream offset " + std::to_string(cls + 1)) && has(msg, "empty document")) << msg;
  }
  {  // [MASK] inside a sentence
    std::vector<int32_t> t = good;
    t[3] = kSpecial.mask;
    const std::string msg = refusal(t, o);
    EXPECT_TRUE(has(msg, "token 3 of") && has(msg, "[MASK]")) << msg;
  }
  {  // a range that starts inside a document
    test::TempDir dir;
    auto stream = write_stream(dir, good, 2);
    try {
      BertExamples ex(stream, 4, stream->size(), o);
      ADD_FAILURE() << "a range starting at token 4 was accepted";
    } catch (const DataError& err) {
      EXPECT_TRUE(has(err.what(), "stream offset 4") && has(err.what(), "inside a document")) << err.what();
    }
  }
  {  // one document: NotNext has nowhere to go
    const Corpus one = make_corpus(1, 1, 5, 10);
    const std::string msg = refusal(one.tokens, o);
    EXPECT_TRUE(has(msg, "1 document") && has(msg, "at least two")) << msg;
  }
}

TEST(BertExamples, RefusesOptionsOutOfRange) {
  test::TempDir dir;
  const Corpus c = make_corpus(20, 1, 5, 10);
  auto stream = write_stream(dir, c.tokens);
  auto build = [&](const BertDataOptions& o) { BertExamples ex(stream, 0, stream->size(), o); };
  BertDataOptions o = options(4, 1);
  EXPECT_THROW(build(o), ConfigError);                 // max_seq_len < 5
  o = options(64, 1);
  o.special.mask = o.special.pad;
  EXPECT_THROW(build(o), ConfigError);                 // two specials share an id
  o = options(64, 1);
  o.masked_lm_prob = 1.5;
  EXPECT_THROW(build(o), ConfigError);
  o = options(64, 1);
  o.special.cls = kVocab;
  EXPECT_THROW(build(o), ConfigError);
  o = options(64, 1);
  o.vocab_size = 30522;                                // the shards' vocabulary is larger
  o.special = kSpecial;
  EXPECT_THROW(build(o), DataError);
}

// ---- the permutation ------------------------------------------------------------------

TEST(FeistelPermutation, IsTokenWindowsOrderAndABijection) {
  test::TempDir dir;
  std::vector<int32_t> positions(5000);
  for (int32_t k = 0; k < 5000; ++k) positions[k] = k;
  auto stream = write_stream(dir, positions, 1);
  for (const int64_t t : {7, 16, 250}) {
    TokenWindowsOptions wo;
    wo.seq_len = t;
    wo.seed = 99;
    TokenWindows w(stream, 0, stream->size(), wo);
    const FeistelPermutation p(w.windows_per_epoch(), rng_key(99, 0, RngPurpose::kShuffle));
    for (int64_t epoch = 0; epoch < 3; ++epoch)
      for (int64_t i = 0; i < w.windows_per_epoch(); ++i)
        ASSERT_EQ(p(epoch, i), w.slot(epoch, i)) << "seq_len " << t << " epoch " << epoch << " i " << i;
  }
  for (const int64_t n : {1, 2, 3, 5, 17, 64, 1000, 4097}) {
    const FeistelPermutation p(n, 12345);
    std::vector<char> seen(static_cast<size_t>(n), 0);
    for (int64_t i = 0; i < n; ++i) {
      const int64_t v = p(1, i);
      ASSERT_TRUE(v >= 0 && v < n && !seen[v]) << "n " << n << " i " << i << " -> " << v;
      seen[v] = 1;
    }
  }
}

}  // namespace
}  // namespace loom
