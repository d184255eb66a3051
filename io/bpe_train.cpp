#include "io/bpe_train.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <map>

#include "core/error.h"

namespace loom {
namespace {

using PairKey = uint64_t;   // (left id << 32) | right id: ordering keys orders pairs
PairKey pair_key(uint32_t left, uint32_t right) { return (uint64_t{left} << 32) | right; }

struct Word {
  std::vector<uint32_t> symbols;   // token ids
  int64_t count;
};

// One change of a pair's count caused by merging inside a word: +1 or -1 occurrence.
struct PairChange {
  PairKey pair;
  int32_t delta;
};

// Merges every (left, right) in the word, left to right; appends the pair changes.
void merge_in_word(Word& w, uint32_t left, uint32_t right, uint32_t result,
                   std::vector<PairChange>& changes) {
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

// A queued pair with the count it had when queued and the words it was formed in.
struct Candidate {
  int64_t count;
  PairKey pair;
  uint32_t words;   // index into the trainer's word lists
};
// std heap: the top is the largest; largest = highest count, then smallest pair.
bool lower_priority(const Candidate& a, const Candidate& b) {
  return a.count != b.count ? a.count < b.count : a.pair > b.pair;
}

class Trainer {
 public:
  Trainer(const BpeWordCounts& counts, const BpeTrainOptions& opt);
  BpeVocab run();

 private:
  void count_pairs();
  void push(int64_t count, PairKey pair, std::vector<uint32_t> words);
  // Merges `top` everywhere (its result token is `result`) and queues the pairs it formed.
  void apply(const Candidate& top, uint32_t result);

  const BpeTrainOptions& opt_;
  BpeVocab vocab_;
  std::unordered_map<std::string, uint32_t> id_of_;   // raw bytes -> id (ordinary tokens)
  std::vector<Word> words_;
  std::unordered_map<PairKey, int64_t> pair_counts_;
  std::vector<std::vector<uint32_t>> word_lists_;     // per queued candidate
  std::vector<Candidate> heap_;
};

Trainer::Trainer(const BpeWordCounts& counts, const BpeTrainOptions& opt) : opt_(opt) {
  for (const std::string& s : opt.special_tokens) {
    vocab_.tokens.push_back(s);
    vocab_.special.push_back(1);
  }
  std::vector<uint8_t> bytes(256);
  for (int b = 0; b < 256; ++b) bytes[b] = static_cast<uint8_t>(b);
  std::sort(bytes.begin(), bytes.end(),
            [](uint8_t a, uint8_t b) { return byte_to_unicode(a) < byte_to_unicode(b); });
  uint32_t byte_id[256];
  for (uint8_t b : bytes) {
    byte_id[b] = static_cast<uint32_t>(vocab_.tokens.size());
    id_of_.emplace(std::string(1, static_cast<char>(b)), byte_id[b]);
    vocab_.tokens.emplace_back(1, static_cast<char>(b));
    vocab_.special.push_back(0);
  }
  // Words in byte order: the result does not depend on it, but the work order does.
  std::vector<const std::pair<const std::string, uint64_t>*> sorted;
  sorted.reserve(counts.size());
  for (const auto& kv : counts)
    if (kv.second > 0 && !kv.first.empty()) sorted.push_back(&kv);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
  words_.reserve(sorted.size());
  for (const auto* kv : sorted) {
    Word w{{}, static_cast<int64_t>(kv->second)};
    for (unsigned char c : kv->first) w.symbols.push_back(byte_id[c]);
    words_.push_back(std::move(w));
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
      PairKey p = pair_key(w.symbols[i], w.symbols[i + 1]);
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

BpeVocab Trainer::run() {
  count_pairs();
  const int64_t floor = std::max<int64_t>(1, static_cast<int64_t>(opt_.min_frequency));
  while (vocab_.tokens.size() < opt_.vocab_size && !heap_.empty()) {
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
    const auto left = static_cast<uint32_t>(top.pair >> 32);
    const auto right = static_cast<uint32_t>(top.pair & 0xFFFFFFFFu);
    std::string bytes = vocab_.tokens[left] + vocab_.tokens[right];
    auto [it, added] = id_of_.emplace(bytes, static_cast<uint32_t>(vocab_.tokens.size()));
    if (added) {
      vocab_.tokens.push_back(std::move(bytes));
      vocab_.special.push_back(0);
    }
    vocab_.merges.push_back({left, right, it->second});
    apply(top, it->second);
    word_lists_[top.words] = {};   // never needed again: this pair is no longer queued
  }
  return std::move(vocab_);
}

}  // namespace

void count_bpe_words(std::string_view text, BpeWordCounts& counts, const BpeCountOptions& opt) {
  std::string scratch;
  text = apply_utf8_policy(text, opt.invalid_utf8, opt.source, opt.source_offset, scratch);
  Gpt2PreTokenizer pre(text);
  std::string_view piece;
  std::string key;
  while (pre.next(piece)) {
    key.assign(piece);
    ++counts[key];
  }
}

void merge_word_counts(BpeWordCounts& into, const BpeWordCounts& from) {
  for (const auto& [word, count] : from) into[word] += count;
}

namespace {

static_assert(std::endian::native == std::endian::little, "serialized counts are little-endian");
constexpr char kCountsMagic[4] = {'L', 'B', 'W', 'C'};
constexpr uint32_t kCountsVersion = 1;

template <typename T>
void put(std::string& out, T v) {
  out.append(reinterpret_cast<const char*>(&v), sizeof(v));
}

}  // namespace

std::string serialize_word_counts(const BpeWordCounts& counts) {
  std::vector<const std::pair<const std::string, uint64_t>*> sorted;
  sorted.reserve(counts.size());
  size_t bytes = 16;
  for (const auto& kv : counts) {
    sorted.push_back(&kv);
    bytes += 12 + kv.first.size();
  }
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
  std::string out;
  out.reserve(bytes);
  out.append(kCountsMagic, 4);
  put<uint32_t>(out, kCountsVersion);
  put<uint64_t>(out, sorted.size());
  for (const auto* kv : sorted) {
    put<uint32_t>(out, static_cast<uint32_t>(kv->first.size()));
    out += kv->first;
    put<uint64_t>(out, kv->second);
  }
  return out;
}

void deserialize_word_counts(std::string_view bytes, BpeWordCounts& counts,
                             std::string_view source) {
  size_t pos = 0;
  auto fail = [&](const std::string& what) {
    throw DataError(std::string(source) + ": byte " + std::to_string(pos) +
                    ": not a serialized BPE word-count table: " + what);
  };
  auto take = [&](void* dst, size_t n) {
    if (bytes.size() - pos < n) fail("truncated (" + std::to_string(bytes.size()) + " bytes)");
    std::memcpy(dst, bytes.data() + pos, n);
    pos += n;
  };
  char magic[4];
  uint32_t version = 0;
  uint64_t n = 0;
  take(magic, 4);
  if (std::memcmp(magic, kCountsMagic, 4) != 0) fail("bad magic");
  take(&version, 4);
  if (version != kCountsVersion) fail("version " + std::to_string(version) + ", expected 1");
  take(&n, 8);
  std::string word;
  for (uint64_t i = 0; i < n; ++i) {
    uint32_t len = 0;
    uint64_t count = 0;
    take(&len, 4);
    if (bytes.size() - pos < len) fail("word " + std::to_string(i) + " runs past the end");
    word.assign(bytes.substr(pos, len));
    pos += len;
    take(&count, 8);
    counts[word] += count;
  }
  if (pos != bytes.size()) fail(std::to_string(bytes.size() - pos) + " bytes after the table");
}

BpeVocab train_bpe(const BpeWordCounts& counts, const BpeTrainOptions& opt) {
  const size_t base = opt.special_tokens.size() + 256;
  if (opt.vocab_size < base)
    throw ConfigError("BPE training: vocab_size " + std::to_string(opt.vocab_size) +
                      " is below the " + std::to_string(base) +
                      " tokens every byte-level vocabulary has (256 bytes + " +
                      std::to_string(opt.special_tokens.size()) + " special)");
  return Trainer(counts, opt).run();
}

}  // namespace loom
