#pragma once
// Synthetic BERT token streams for tests (Note [BERT token stream]): text token k has id
// kFirstText + k (k its stream offset), so an example's tokens say exactly where in the
// stream - which document, which sentence - they were read from.
#include <algorithm>
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "io/bert_examples.h"
#include "io/token_shard.h"
#include "io/token_windows.h"
#include "tests/support/test_support.h"

namespace loom::test {

constexpr int32_t kVocab = 1 << 24;
constexpr int32_t kFirstText = 1000;
constexpr BertSpecialIds kSpecial{0, 100, 101, 102, 103};   // pad unk cls sep mask

using Sentence = std::vector<int32_t>;
using Document = std::vector<Sentence>;

// Documents as the reference sees them, and the same as a BERT token stream.
struct Corpus {
  std::vector<Document> docs;
  std::vector<int32_t> tokens;     // the stream (Note [BERT token stream])
  std::vector<int32_t> doc_of;     // (tokens) document of each stream position
  std::vector<int32_t> sent_of;    // (tokens) global sentence index; -1 at [SEP] and [CLS]
};

// `docs` documents of 1..max_sentences sentences of 1..max_len tokens (one sentence in 16
// three times longer, to truncate across sentences); one document in 8 has one sentence.
inline Corpus make_corpus(int docs, uint64_t seed, int max_sentences, int max_len) {
  std::mt19937_64 gen(seed);
  Corpus c;
  int32_t sentence = 0;
  for (int d = 0; d < docs; ++d) {
    const int n = gen() % 8 == 0 ? 1 : 1 + static_cast<int>(gen() % max_sentences);
    Document doc;
    for (int s = 0; s < n; ++s, ++sentence) {
      int len = 1 + static_cast<int>(gen() % max_len);
      if (gen() % 16 == 0) len *= 3;
      Sentence ids;
      for (int k = 0; k < len; ++k) {
        const auto at = static_cast<int32_t>(c.tokens.size());
        ids.push_back(kFirstText + at);
        c.tokens.push_back(kFirstText + at);
        c.doc_of.push_back(d);
        c.sent_of.push_back(sentence);
      }
      c.tokens.push_back(kSpecial.sep);
      c.doc_of.push_back(d);
      c.sent_of.push_back(-1);
      doc.push_back(std::move(ids));
    }
    c.tokens.push_back(kSpecial.cls);
    c.doc_of.push_back(d);
    c.sent_of.push_back(-1);
    c.docs.push_back(std::move(doc));
  }
  return c;
}

// The tokens as shards cut at arbitrary places (the stream reads across them).
inline std::shared_ptr<const TokenStream> write_stream(const test::TempDir& dir,
                                                const std::vector<int32_t>& tokens,
                                                int shards = 3) {
  std::vector<TokenShard> out;
  const size_t n = tokens.size();
  for (int s = 0; s < shards; ++s) {
    const size_t lo = std::min(n, n * s / shards + (s ? 7 : 0));
    const size_t hi = s + 1 == shards ? n : std::min(n, n * (s + 1) / shards + 7);
    const std::string path = dir.file("part-" + std::to_string(s) + ".tokens");
    TokenShardWriter w(path, kVocab, 42);
    std::vector<uint32_t> ids(tokens.begin() + static_cast<ptrdiff_t>(lo),
                              tokens.begin() + static_cast<ptrdiff_t>(hi));
    w.append(ids);
    w.commit();
    out.push_back(TokenShard::open(path));
  }
  return std::make_shared<const TokenStream>(std::move(out));
}

inline BertDataOptions options(int64_t max_seq_len, uint64_t seed) {
  BertDataOptions o;
  o.max_seq_len = max_seq_len;
  o.seed = seed;
  o.vocab_size = kVocab;
  o.special = kSpecial;
  return o;
}

inline bool is_special(int32_t id) {
  return id == kSpecial.pad || id == kSpecial.unk || id == kSpecial.cls || id == kSpecial.sep ||
         id == kSpecial.mask;
}

// The example's ids before masking.
inline std::vector<int32_t> unmasked(const BertExample& e) {
  std::vector<int32_t> ids = e.input_ids;
  for (size_t p = 0; p < ids.size(); ++p)
    if (e.labels[p] >= 0) ids[p] = e.labels[p];
  return ids;
}

// FNV-1a over everything example() wrote: equal hashes, equal examples (for comparing ranks).
inline uint64_t example_hash(const BertExample& e) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](int64_t v) {
    for (int k = 0; k < 8; ++k, v >>= 8) h = (h ^ static_cast<uint64_t>(v & 0xFF)) * 1099511628211ull;
  };
  for (const std::vector<int32_t>* a :
       {&e.input_ids, &e.segment_ids, &e.labels, &e.mlm_positions, &e.mlm_labels})
    for (int32_t v : *a) mix(v);
  mix(e.length);
  mix(e.a_length);
  mix(e.num_predictions);
  mix(e.nsp_label);
  return h;
}

}  // namespace loom::test
