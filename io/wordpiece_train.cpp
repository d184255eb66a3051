#include "io/wordpiece_train.h"

#include <algorithm>
#include <map>
#include <unordered_map>

#include "core/error.h"
#include "io/bpe_pretokenize.h"
#include "io/wordpiece.h"

namespace loom {
namespace {

using PairKey = uint64_t;   // (left id << 32) | right id: ordering keys orders pairs
PairKey pair_key(uint32_t left, uint32_t right) { return (uint64_t{left} << 32) | right; }

struct Word {
  std::vector<uint32_t> symbols;   // token ids
  int64_t count;
};

struct PairChange {
  PairKey pair;
  int32_t delta;
};

// Merges every (left, right) in the word, left to right; appends the pair changes.
void merge_in_word(Word& w, uint32_t left, uint32_t right, uint32_t result, std::vector<PairChange>& changes) {
  std::vector<uint32_t>& s = w.symbols;
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    if (s[i] != left || s[i + 1] != right) continue;
    if (i > 0) {
      changes.push_back({pair_key(s[i - 1], left), -1});
      changes.push_back({pair_key(s[i - 1], result), +1});
    }
    s[i] = result;
    s.erase(s.begin() + static_cast<ptrdiff_t>(i) + 1);
    if (i + 1 < s.size()) {
      changes.push_back({pair_key(right, s[i + 1]), -1});
      changes.push_back({pair_key(result, s[i + 1]), +1});
    }
  }
}

struct Candidate {
  int64_t count;
  PairKey pair;
  uint32_t words;   // index into the trainer's word lists
};
// std heap: the top is the largest; largest = highest count, then smallest pair.
bool lower_priority(const Candidate& a, const Candidate& b) {
  return a.count != b.count ? a.count < b.count : a.pair > b.pair;
}

std::string utf8_of(uint32_t cp) {
  char buf[4];
  return std::string(buf, unicode::encode_utf8(cp, buf));
}

class Trainer {
 public:
  Trainer(const BpeWordCounts& counts, const WordPieceTrainOptions& opt);
  std::vector<std::string> run();

 private:
  uint32_t add_token(std::string token);
  void count_pairs();
  void push(int64_t count, PairKey pair, std::vector<uint32_t> words);
  void apply(const Candidate& top, uint32_t result);

  const WordPieceTrainOptions& opt_;
  std::vector<std::string> tokens_;
  std::unordered_map<std::string, uint32_t> id_of_;
  std::vector<Word> words_;
  std::unordered_map<PairKey, int64_t> pair_counts_;
  std::vector<std::vector<uint32_t>> word_lists_;   // per queued candidate
  std::vector<Candidate> heap_;
};

uint32_t Trainer::add_token(std::string token) {
  auto [it, added] = id_of_.emplace(token, static_cast<uint32_t>(tokens_.size()));
  if (added) tokens_.push_back(std::move(token));
  return it->second;
}

Trainer::Trainer(const BpeWordCounts& counts, const WordPieceTrainOptions& opt) : opt_(opt) {
  for (std::string_view s : kWordPieceSpecials) add_token(std::string(s));
  // Words in byte order, as code points: the result does not depend on it, the work does.
  std::vector<const std::pair<const std::string, uint64_t>*> sorted;
  sorted.reserve(counts.size());
  for (const auto& kv : counts)
    if (kv.second > 0 && !kv.first.empty()) sorted.push_back(&kv);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
  std::vector<std::vector<uint32_t>> chars(sorted.size());
  std::map<uint32_t, uint64_t> alphabet;   // code point -> occurrences
  for (size_t w = 0; w < sorted.size(); ++w) {
    const std::string& s = sorted[w]->first;
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    const auto* e = p + s.size();
    while (p < e) {
      const unicode::Utf8Char c = unicode::decode_utf8(p, e);
      chars[w].push_back(c.cp);
      alphabet[c.cp] += sorted[w]->second;
      p += c.len;
    }
  }
  std::vector<std::pair<uint32_t, uint64_t>> kept(alphabet.begin(), alphabet.end());
  if (kept.size() > opt.limit_alphabet) {   // the most frequent; ties: the smaller code point
    std::stable_sort(kept.begin(), kept.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    kept.resize(opt.limit_alphabet);
    std::sort(kept.begin(), kept.end());
  }
  std::map<uint32_t, bool> in_alphabet;    // code point -> seen after a word's first character
  for (const auto& [cp, n] : kept) {
    add_token(utf8_of(cp));
    in_alphabet[cp] = false;
  }
  for (const std::vector<uint32_t>& word : chars)
    for (size_t i = 1; i < word.size(); ++i)
      if (auto it = in_alphabet.find(word[i]); it != in_alphabet.end()) it->second = true;
  for (const auto& [cp, continues] : in_alphabet)
    if (continues) add_token(std::string(kWordPiecePrefix) + utf8_of(cp));
  words_.reserve(sorted.size());
  for (size_t w = 0; w < sorted.size(); ++w) {
    Word word{{}, static_cast<int64_t>(sorted[w]->second)};
    for (size_t i = 0; i < chars[w].size(); ++i) {
      if (!in_alphabet.count(chars[w][i])) continue;   // dropped with the alphabet's tail
      const std::string c = utf8_of(chars[w][i]);
      word.symbols.push_back(id_of_.at(i == 0 ? c : std::string(kWordPiecePrefix) + c));
    }
    words_.push_back(std::move(word));
  }
}

void Trainer::push(int64_t count, PairKey pair, std::vector<uint32_t> words) {
  word_lists_.push_back(std::move(words));
  heap_.push_back({count, pair, static_cast<uint32_t>(word_lists_.size() - 1)});
  std::push_heap(heap_.begin(), heap_.end(), lower_priority);
}

void Trainer::count_pairs() {
  std::unordered_map<PairKey, std::vector<uint32_t>> where;
  for (uint32_t wi = 0; wi < words_.size(); ++wi) {
    const Word& w = words_[wi];
    for (size_t i = 0; i + 1 < w.symbols.size(); ++i) {
      const PairKey p = pair_key(w.symbols[i], w.symbols[i + 1]);
      pair_counts_[p] += w.count;
      std::vector<uint32_t>& list = where[p];
      if (list.empty() || list.back() != wi) list.push_back(wi);
    }
  }
  // Queue in pair order so that the heap's layout does not depend on hash order.
  std::map<PairKey, std::vector<uint32_t>> ordered(std::make_move_iterator(where.begin()),
                                                   std::make_move_iterator(where.end()));
  for (auto& [pair, list] : ordered)
    if (pair_counts_[pair] > 0) push(pair_counts_[pair], pair, std::move(list));
}

void Trainer::apply(const Candidate& top, uint32_t result) {
  const auto left = static_cast<uint32_t>(top.pair >> 32);
  const auto right = static_cast<uint32_t>(top.pair & 0xFFFFFFFFu);
  std::vector<PairChange> changes;
  std::map<PairKey, std::vector<uint32_t>> formed;   // pairs formed now -> their words
  for (uint32_t wi : word_lists_[top.words]) {
    changes.clear();
    merge_in_word(words_[wi], left, right, result, changes);
    for (const PairChange& c : changes) {
      pair_counts_[c.pair] += c.delta * words_[wi].count;
      if (c.delta > 0) {
        std::vector<uint32_t>& list = formed[c.pair];
        if (list.empty() || list.back() != wi) list.push_back(wi);
      }
    }
  }
  for (auto& [pair, list] : formed) {
    const int64_t count = pair_counts_[pair];
    if (count > 0) push(count, pair, std::move(list));
  }
}

std::vector<std::string> Trainer::run() {
  count_pairs();
  const int64_t floor = std::max<int64_t>(1, static_cast<int64_t>(opt_.min_frequency));
  while (tokens_.size() < opt_.vocab_size && !heap_.empty()) {
    std::pop_heap(heap_.begin(), heap_.end(), lower_priority);
    Candidate top = heap_.back();
    heap_.pop_back();
    const int64_t now = pair_counts_[top.pair];
    if (top.count != now) {   // counts only fall after queueing: requeue at the true count
      top.count = now;
      heap_.push_back(top);
      std::push_heap(heap_.begin(), heap_.end(), lower_priority);
      continue;
    }
    if (top.count < floor) break;
    const std::string& a = tokens_[top.pair >> 32];
    std::string_view b = tokens_[top.pair & 0xFFFFFFFFu];
    if (b.starts_with(kWordPiecePrefix)) b.remove_prefix(kWordPiecePrefix.size());
    const uint32_t result = add_token(a + std::string(b));
    apply(top, result);
    word_lists_[top.words] = {};   // never needed again: this pair is no longer queued
  }
  // The alphabet alone may exceed vocab_size: HF keeps it whole; loom keeps the size asked.
  if (tokens_.size() > opt_.vocab_size) tokens_.resize(opt_.vocab_size);
  return std::move(tokens_);
}

}  // namespace

void count_wordpiece_words(const BertBasicTokenizer& basic, std::string_view text, BpeWordCounts& counts,
                           const TokenizeOptions& opt) {
  if (opt.invalid_utf8 == InvalidUtf8::kKeepBytes)
    throw ConfigError("WordPiece training cannot keep invalid UTF-8 bytes (" + std::string(opt.source) +
                      "); choose error or replace");
  std::string scratch, word;
  text = apply_utf8_policy(text, opt.invalid_utf8, opt.source, opt.source_offset, scratch);
  std::string key;   // reused: no allocation per word once the table has it
  basic.split(text, word, [&](std::string_view w) {
    key.assign(w);
    ++counts[key];
  });
}

std::vector<std::string> train_wordpiece(const BpeWordCounts& counts, const WordPieceTrainOptions& opt) {
  const size_t base = std::size(kWordPieceSpecials);
  if (opt.vocab_size < base)
    throw ConfigError("WordPiece training: vocab_size " + std::to_string(opt.vocab_size) + " is below the " +
                      std::to_string(base) + " special tokens [PAD] [UNK] [CLS] [SEP] [MASK]");
  return Trainer(counts, opt).run();
}

}  // namespace loom
