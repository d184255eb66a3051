#include "io/bert_examples.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "core/error.h"
#include "core/rng.h"

namespace loom {
namespace {

constexpr size_t kScanChunk = 1 << 16;   // tokens per TokenStream::copy while scanning
constexpr size_t kCopyChunk = 256;       // tokens per copy in example() (on the stack)

// "token 17 of part-0-of-2.tokens (stream offset 4113)": where a stream offset lives.
std::string where(const TokenStream& stream, uint64_t offset) {
  uint64_t at = 0;
  for (size_t i = 0; i < stream.shard_count(); ++i) {
    const uint64_t n = stream.shard(i).size();
    if (offset < at + n)
      return "token " + std::to_string(offset - at) + " of " + stream.shard(i).path() +
             " (stream offset " + std::to_string(offset) + ")";
    at += n;
  }
  return "stream offset " + std::to_string(offset);
}

void check_probability(double p, const char* name) {
  LOOM_CHECK(p >= 0 && p <= 1, ConfigError,
             std::string(name) + " must be in [0, 1], got " + std::to_string(p));
}

void check_options(const BertDataOptions& o) {
  LOOM_CHECK(o.max_seq_len >= 5 && o.max_seq_len <= (int64_t{1} << 24), ConfigError,
             "max_seq_len must be in [5, 2^24] ([CLS] A [SEP] B [SEP] with a token in A and B), "
             "got " + std::to_string(o.max_seq_len));
  LOOM_CHECK(o.max_predictions_per_seq >= 1 && o.max_predictions_per_seq <= (int64_t{1} << 24),
             ConfigError,
             "max_predictions_per_seq must be in [1, 2^24], got " +
                 std::to_string(o.max_predictions_per_seq));
  check_probability(o.short_seq_prob, "short_seq_prob");
  check_probability(o.masked_lm_prob, "masked_lm_prob");
  check_probability(o.random_next_prob, "random_next_prob");
  LOOM_CHECK(o.vocab_size > 5, ConfigError,
             "vocab_size must exceed the 5 special ids, got " + std::to_string(o.vocab_size));
  const BertSpecialIds& s = o.special;
  const int32_t ids[5] = {s.pad, s.unk, s.cls, s.sep, s.mask};
  const char* names[5] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"};
  for (int i = 0; i < 5; ++i) {
    LOOM_CHECK(ids[i] >= 0 && ids[i] < o.vocab_size, ConfigError,
               std::string("the id of ") + names[i] + " must be in [0, vocab_size = " +
                   std::to_string(o.vocab_size) + "), got " + std::to_string(ids[i]));
    for (int j = 0; j < i; ++j)
      LOOM_CHECK(ids[i] != ids[j], ConfigError,
                 std::string(names[j]) + " and " + names[i] + " have the same id " +
                     std::to_string(ids[i]));
  }
}

}  // namespace

// ---- building the table ---------------------------------------------------------------

// The sentences and documents of a range (Note [BERT token stream]), alive while the
// table is built; then Note [BERT examples] over them.
class BertExamples::Builder {
 public:
  Builder(const BertExamples& owner, const std::string& split_name)
      : owner_(owner), stream_(*owner.stream_), split_name_(split_name) {}

  void scan();
  void build(std::vector<Instance>& table) const;
  int64_t documents() const { return static_cast<int64_t>(doc_first_.size()) - 1; }
  int64_t sentences() const { return static_cast<int64_t>(start_.size()); }

 private:
  enum class State { kBoundary, kAfterSep, kInSentence };
  struct Segment {
    int64_t first = 0, last = 0;   // sentences [first, last)
    int64_t tokens = 0;            // less the cuts
    int64_t cut_front = 0, cut_back = 0;   // tokens left out of sentence first / last - 1
  };
  [[noreturn]] void refuse(uint64_t offset, const std::string& what) const;
  void step(int32_t token, uint64_t offset, State& state, uint64_t& sentence_start);
  void build_document(int64_t d, Rng& rng, std::vector<Instance>& table) const;
  Segment random_b(int64_t d, int64_t target_b, Rng& rng) const;
  Instance make_instance(Segment a, Segment b, bool random_next, Rng& rng) const;
  uint64_t front_offset(const Segment& s, int64_t drop) const;
  uint64_t back_offset(const Segment& s, int64_t drop) const;
  int64_t tokens(int64_t first, int64_t last) const;

  const BertExamples& owner_;
  const TokenStream& stream_;
  const std::string& split_name_;
  std::vector<uint64_t> start_;    // (sentences) stream offset of each sentence's first token
  std::vector<uint32_t> length_;   // (sentences) its tokens, [SEP] not counted
  std::vector<int64_t> doc_first_{0};   // (documents + 1) first sentence of each document
};

void BertExamples::Builder::refuse(uint64_t offset, const std::string& what) const {
  throw DataError("the BERT token stream (" + split_name_ + " documents, stream tokens [" +
                  std::to_string(owner_.begin_) + ", " + std::to_string(owner_.end_) +
                  ")) is malformed at " + where(stream_, offset) + ": " + what +
                  " (Note [BERT token stream]: each sentence's ids then [SEP], each "
                  "document closed by [CLS]); rebuild the token shards with `loom tokenize`");
}

void BertExamples::Builder::step(int32_t t, uint64_t offset, State& state, uint64_t& sentence_start) {
  const BertSpecialIds& sp = owner_.options_.special;
  if (t == sp.sep) {
    if (state != State::kInSentence)
      refuse(offset, state == State::kAfterSep ? "[SEP] right after [SEP], an empty sentence"
                                               : "[SEP] opens a document, an empty sentence");
    LOOM_CHECK(offset - sentence_start < UINT32_MAX, DataError,
               "a sentence of more than 2^32 tokens ends at " + where(stream_, offset));
    start_.push_back(sentence_start);
    length_.push_back(static_cast<uint32_t>(offset - sentence_start));
    state = State::kAfterSep;
  } else if (t == sp.cls) {
    if (state != State::kAfterSep)
      refuse(offset, state == State::kInSentence
                         ? "[CLS] ends a sentence that has no [SEP]"
                         : "[CLS] right after [CLS] or at the range start, an empty document");
    doc_first_.push_back(static_cast<int64_t>(start_.size()));
    state = State::kBoundary;
  } else if (t == sp.pad || t == sp.mask || t < 0 || t >= owner_.options_.vocab_size) {
    refuse(offset, "token id " + std::to_string(t) +
                       (t == sp.pad ? " ([PAD])" : t == sp.mask ? " ([MASK])" : "") +
                       " inside a sentence (ids must be in [0, vocab_size = " +
                       std::to_string(owner_.options_.vocab_size) + ") and not [PAD] or [MASK])");
  } else if (state != State::kInSentence) {
    sentence_start = offset;
    state = State::kInSentence;
  }
}

void BertExamples::Builder::scan() {
  if (owner_.begin_ > 0) {
    int32_t before = 0;
    stream_.copy(owner_.begin_ - 1, {&before, 1});
    if (before != owner_.options_.special.cls)
      refuse(owner_.begin_, "the range starts inside a document (the token before it is not [CLS])");
  }
  std::vector<int32_t> buf(kScanChunk);
  State state = State::kBoundary;
  uint64_t sentence_start = owner_.begin_;
  for (uint64_t at = owner_.begin_; at < owner_.end_;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kScanChunk, owner_.end_ - at));
    stream_.copy(at, {buf.data(), n});
    for (size_t k = 0; k < n; ++k) step(buf[k], at + k, state, sentence_start);
    at += n;
  }
  if (owner_.end_ == owner_.begin_) refuse(owner_.begin_, "the range holds no tokens");
  if (state != State::kBoundary)
    refuse(owner_.end_ - 1, "the range ends without [CLS], inside a document");
  LOOM_CHECK(documents() >= 2, DataError,
             "the " + split_name_ + " part of the BERT token stream holds " +
                 std::to_string(documents()) + " document (stream tokens [" +
                 std::to_string(owner_.begin_) + ", " + std::to_string(owner_.end_) +
                 "), token shards: " + stream_.file_list() +
                 "); NotNext pairs need at least two: use a larger corpus or another "
                 "heldout_fraction");
}

int64_t BertExamples::Builder::tokens(int64_t first, int64_t last) const {
  int64_t n = 0;
  for (int64_t s = first; s < last; ++s) n += length_[static_cast<size_t>(s)];
  return n;
}

void BertExamples::Builder::build(std::vector<Instance>& table) const {
  Rng rng(owner_.options_.seed, owner_.split_id_, RngPurpose::kData);
  for (int64_t d = 0; d < documents(); ++d) build_document(d, rng, table);
  table.shrink_to_fit();
}

// create_instances_from_document, Note [BERT examples]; the draws in the original's order.
void BertExamples::Builder::build_document(int64_t d, Rng& rng, std::vector<Instance>& table) const {
  const BertDataOptions& o = owner_.options_;
  const int64_t max_num_tokens = o.max_seq_len - 3;
  auto randint = [&rng](int64_t lo, int64_t hi) {   // [lo, hi], as Python's randint
    return lo + static_cast<int64_t>(rng.below(static_cast<uint64_t>(hi - lo + 1)));
  };
  int64_t target = max_num_tokens;
  if (rng.uniform() < o.short_seq_prob) target = randint(2, max_num_tokens);
  const int64_t s1 = doc_first_[static_cast<size_t>(d) + 1];
  int64_t chunk_first = doc_first_[static_cast<size_t>(d)], chunk_tokens = 0;
  for (int64_t i = chunk_first; i < s1; ++i) {
    chunk_tokens += length_[static_cast<size_t>(i)];
    if (i != s1 - 1 && chunk_tokens < target) continue;
    if (i == chunk_first && i != s1 - 1) {   // one sentence: top up with the next one
      ++i;
      chunk_tokens += length_[static_cast<size_t>(i)];
    }
    const int64_t chunk = i - chunk_first + 1;
    if (chunk == 1 && chunk_tokens >= 2) {   // the document's last sentence, alone
      if (rng.uniform() < o.random_next_prob) {
        const Segment a{i, i + 1, chunk_tokens};
        table.push_back(make_instance(a, random_b(d, target - a.tokens, rng), true, rng));
      } else {
        const int64_t cut = randint(1, chunk_tokens - 1);
        const Segment a{i, i + 1, cut, 0, chunk_tokens - cut};
        const Segment b{i, i + 1, chunk_tokens - cut, cut, 0};
        table.push_back(make_instance(a, b, false, rng));
      }
      break;
    }
    const int64_t a_end = chunk >= 2 ? randint(1, chunk - 1) : 1;
    Segment a{chunk_first, chunk_first + a_end, tokens(chunk_first, chunk_first + a_end)};
    Segment b;
    const bool random_next = chunk == 1 || rng.uniform() < o.random_next_prob;
    if (random_next) {
      b = random_b(d, target - a.tokens, rng);
      i -= chunk - a_end;   // the unused sentences start the next chunk
    } else {
      b = {a.last, i + 1, chunk_tokens - a.tokens};
    }
    table.push_back(make_instance(a, b, random_next, rng));
    chunk_first = i + 1;
    chunk_tokens = 0;
  }
}

// B of a NotNext pair: sentences of another document from a random one on, until target_b.
BertExamples::Builder::Segment BertExamples::Builder::random_b(int64_t d, int64_t target_b,
                                                               Rng& rng) const {
  int64_t other = static_cast<int64_t>(rng.below(static_cast<uint64_t>(documents() - 1)));
  if (other >= d) ++other;
  const int64_t first = doc_first_[static_cast<size_t>(other)];
  const int64_t last = doc_first_[static_cast<size_t>(other) + 1];
  Segment b;
  b.first = first + static_cast<int64_t>(rng.below(static_cast<uint64_t>(last - first)));
  for (b.last = b.first; b.last < last;) {
    b.tokens += length_[static_cast<size_t>(b.last++)];
    if (b.tokens >= target_b) break;
  }
  return b;
}

// truncate_seq_pair, then the kept tokens as stream ranges.
BertExamples::Instance BertExamples::Builder::make_instance(Segment a, Segment b, bool random_next,
                                                            Rng& rng) const {
  const int64_t max_num_tokens = owner_.options_.max_seq_len - 3;
  int64_t drop[2][2] = {{0, 0}, {0, 0}};   // [A, B][front, back]
  int64_t la = a.tokens, lb = b.tokens;
  while (la + lb > max_num_tokens) {
    const int which = la > lb ? 0 : 1;
    const int end = rng.uniform() < 0.5 ? 0 : 1;
    ++drop[which][end];
    --(which == 0 ? la : lb);
  }
  LOOM_ASSERT(la >= 1 && lb >= 1, "truncate_seq_pair emptied a segment");
  const uint64_t a_begin = front_offset(a, a.cut_front + drop[0][0]);
  const uint64_t a_end = back_offset(a, a.cut_back + drop[0][1]);
  const uint64_t b_begin = front_offset(b, b.cut_front + drop[1][0]);
  const uint64_t b_end = back_offset(b, b.cut_back + drop[1][1]);
  // A range holds at most one [SEP] per kept token: spans stay below 2 * max_seq_len.
  return Instance{a_begin, b_begin, static_cast<uint32_t>(a_end - a_begin),
                  static_cast<uint32_t>(((b_end - b_begin) << 1) | (random_next ? 1 : 0))};
}

// Stream offset of the first token kept after dropping `drop` tokens from s's front.
uint64_t BertExamples::Builder::front_offset(const Segment& s, int64_t drop) const {
  size_t i = static_cast<size_t>(s.first);
  while (drop >= length_[i]) drop -= length_[i++];
  return start_[i] + static_cast<uint64_t>(drop);
}

// One past the stream offset of the last token kept after dropping `drop` from s's back.
uint64_t BertExamples::Builder::back_offset(const Segment& s, int64_t drop) const {
  size_t i = static_cast<size_t>(s.last) - 1;
  while (drop >= length_[i]) drop -= length_[i--];
  return start_[i] + length_[i] - static_cast<uint64_t>(drop);
}

BertExamples::BertExamples(std::shared_ptr<const TokenStream> stream, uint64_t begin, uint64_t end,
                           const BertDataOptions& options, WindowOrder order,
                           const std::string& split_name)
    : stream_(std::move(stream)), begin_(begin), end_(end), options_(options), order_(order),
      split_id_(order == WindowOrder::kSequential ? 1 : 0) {
  LOOM_ASSERT(stream_ != nullptr && begin <= end && end <= stream_->size(), "BertExamples range");
  check_options(options_);
  LOOM_CHECK(stream_->vocab_size() <= static_cast<uint32_t>(options_.vocab_size), DataError,
             "the token shards (" + stream_->file_list() + ") have a vocabulary of " +
                 std::to_string(stream_->vocab_size()) + " ids, more than BERT's vocab_size " +
                 std::to_string(options_.vocab_size) + ": they come from another tokenizer");
  const BertSpecialIds& s = options_.special;
  const int32_t special[5] = {s.pad, s.unk, s.cls, s.sep, s.mask};
  std::copy(special, special + 5, sorted_special_);
  std::sort(sorted_special_, sorted_special_ + 5);
  Builder builder(*this, split_name);
  builder.scan();
  builder.build(table_);
  documents_ = builder.documents();
  sentences_ = builder.sentences();
  permutation_ = FeistelPermutation(examples_per_epoch(),
                                    rng_key(options_.seed, split_id_, RngPurpose::kShuffle));
}

// ---- reading examples -----------------------------------------------------------------

void BertExample::resize(const BertDataOptions& options) {
  const auto t = static_cast<size_t>(options.max_seq_len);
  const auto p = static_cast<size_t>(options.max_predictions_per_seq);
  input_ids.assign(t, 0);
  segment_ids.assign(t, 0);
  labels.assign(t, -1);
  mlm_positions.assign(p, 0);
  mlm_labels.assign(p, -1);
}

int64_t BertExamples::instance_of(int64_t global_index) const {
  LOOM_ASSERT(global_index >= 0, "negative example index");
  const int64_t n = examples_per_epoch();
  if (order_ == WindowOrder::kSequential) return global_index % n;
  return permutation_(global_index / n, global_index % n);
}

BertPair BertExamples::pair(int64_t instance) const {
  LOOM_ASSERT(instance >= 0 && instance < examples_per_epoch(), "instance outside the table");
  const Instance& in = table_[static_cast<size_t>(instance)];
  return BertPair{in.a_begin, in.a_begin + in.a_span, in.b_begin,
                  in.b_begin + (in.b_span_and_next >> 1), (in.b_span_and_next & 1) != 0};
}

int64_t BertExamples::copy_segment(uint64_t begin, uint32_t span, int32_t* ids, int64_t at) const {
  int32_t buf[kCopyChunk];
  for (uint64_t done = 0; done < span;) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kCopyChunk, span - done));
    stream_->copy(begin + done, {buf, n});
    for (size_t k = 0; k < n; ++k)
      if (buf[k] != options_.special.sep) ids[at++] = buf[k];
    done += n;
  }
  return at;
}

void BertExamples::example(int64_t global_index, BertExample& out) const {
  const auto t = static_cast<size_t>(options_.max_seq_len);
  LOOM_ASSERT(out.input_ids.size() == t && out.segment_ids.size() == t && out.labels.size() == t &&
                  out.mlm_positions.size() == static_cast<size_t>(options_.max_predictions_per_seq) &&
                  out.mlm_labels.size() == out.mlm_positions.size(),
              "BertExample not sized for these options (BertExample(options))");
  const Instance& in = table_[static_cast<size_t>(instance_of(global_index))];
  const BertSpecialIds& sp = options_.special;
  int32_t* ids = out.input_ids.data();
  ids[0] = sp.cls;
  int64_t at = copy_segment(in.a_begin, in.a_span, ids, 1);
  out.a_length = at - 1;
  ids[at++] = sp.sep;
  const int64_t b_start = at;
  at = copy_segment(in.b_begin, in.b_span_and_next >> 1, ids, at);
  ids[at++] = sp.sep;
  out.length = at;
  LOOM_ASSERT(out.length <= options_.max_seq_len, "an instance longer than max_seq_len");
  std::fill(out.input_ids.begin() + at, out.input_ids.end(), sp.pad);
  std::fill(out.segment_ids.begin(), out.segment_ids.begin() + b_start, 0);
  std::fill(out.segment_ids.begin() + b_start, out.segment_ids.begin() + at, 1);
  std::fill(out.segment_ids.begin() + at, out.segment_ids.end(), 0);
  out.nsp_label = (in.b_span_and_next & 1) ? 1 : 0;
  mask(global_index, out);
}

// The r-th id of [0, vocab_size) that is not special (r < vocab_size - 5).
int32_t BertExamples::random_token(uint64_t r) const {
  for (int32_t s : sorted_special_)
    if (r >= static_cast<uint64_t>(s)) ++r;
  return static_cast<int32_t>(r);
}

// create_masked_lm_predictions, Note [BERT examples].
void BertExamples::mask(int64_t global_index, BertExample& out) const {
  Rng rng(options_.seed, 2 * static_cast<uint64_t>(global_index) + split_id_, RngPurpose::kMask);
  int32_t* ids = out.input_ids.data();
  int32_t* labels = out.labels.data();
  std::fill(out.labels.begin(), out.labels.end(), -1);
  const int64_t candidates = out.length - 3;   // A then B: candidate k sits at position(k)
  auto position = [a = out.a_length](int64_t k) { return k < a ? 1 + k : 2 + k; };
  const auto rounded = static_cast<int64_t>(
      std::nearbyint(static_cast<double>(out.length) * options_.masked_lm_prob));
  const int64_t n = std::min({options_.max_predictions_per_seq, std::max<int64_t>(1, rounded),
                              candidates});
  // Floyd's sampling of n of the candidates; labels[] >= 0 marks the chosen positions.
  for (int64_t j = candidates - n; j < candidates; ++j) {
    int64_t p = position(static_cast<int64_t>(rng.below(static_cast<uint64_t>(j + 1))));
    if (labels[p] >= 0) p = position(j);
    labels[p] = ids[p];
  }
  int64_t c = 0;
  const uint64_t non_special = static_cast<uint64_t>(options_.vocab_size) - 5;
  for (int64_t p = 1; p + 1 < out.length; ++p) {
    if (labels[p] < 0) continue;
    out.mlm_positions[static_cast<size_t>(c)] = static_cast<int32_t>(p);
    out.mlm_labels[static_cast<size_t>(c)] = labels[p];
    ++c;
    if (rng.uniform() < 0.8) {
      ids[p] = options_.special.mask;
    } else if (rng.uniform() >= 0.5) {   // else kept as it is
      ids[p] = random_token(rng.below(non_special));
    }
  }
  LOOM_ASSERT(c == n, "masked-LM sampling chose a wrong count");
  std::fill(out.mlm_positions.begin() + c, out.mlm_positions.end(), 0);
  std::fill(out.mlm_labels.begin() + c, out.mlm_labels.end(), -1);
  out.num_predictions = n;
}

// ---- splits -----------------------------------------------------------------------------

namespace {

// One past the last [CLS] before offset `at`, or 0: the start of the document holding `at`.
uint64_t document_start(const TokenStream& stream, uint64_t at, int32_t cls) {
  std::vector<int32_t> buf(kScanChunk);
  while (at > 0) {
    const uint64_t lo = at > kScanChunk ? at - kScanChunk : 0;
    stream.copy(lo, {buf.data(), static_cast<size_t>(at - lo)});
    for (uint64_t k = at; k > lo; --k)
      if (buf[static_cast<size_t>(k - 1 - lo)] == cls) return k;
    at = lo;
  }
  return 0;
}

}  // namespace

BertSplits split_bert_examples(std::shared_ptr<const TokenStream> stream, double heldout_fraction,
                               const BertDataOptions& options) {
  LOOM_CHECK(heldout_fraction >= 0 && heldout_fraction < 1, ConfigError,
             "heldout_fraction must be in [0, 1), got " + std::to_string(heldout_fraction));
  const uint64_t n = stream->size();
  if (heldout_fraction == 0)
    return BertSplits{BertExamples(stream, 0, n, options), std::nullopt, n};
  const uint64_t held = static_cast<uint64_t>(std::floor(static_cast<double>(n) * heldout_fraction));
  LOOM_CHECK(held > 0, DataError,
             "heldout_fraction " + std::to_string(heldout_fraction) + " of " + std::to_string(n) +
                 " tokens holds out no token (token shards: " + stream->file_list() +
                 "); use a larger fraction or 0");
  const uint64_t split = document_start(*stream, n - held, options.special.cls);
  const std::string held_name =
      "held-out (the documents from the last " + std::to_string(heldout_fraction) + " of the stream)";
  LOOM_CHECK(split > 0, DataError,
             "the " + held_name + " part takes every document (token shards: " +
                 stream->file_list() + "); use a smaller heldout_fraction or a larger corpus");
  BertSplits out{BertExamples(stream, 0, split, options, WindowOrder::kShuffled, "training"),
                 std::nullopt, split};
  out.heldout.emplace(std::move(stream), split, n, options, WindowOrder::kSequential, held_name);
  return out;
}

}  // namespace loom
