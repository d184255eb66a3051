// Word2Vec: setup, the step, checkpoint hooks (word2vec.h). The cross-rank
// synchronisation and restore() live in word2vec_sync.cpp.
#include "models/word2vec/word2vec.h"

#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/log.h"
#include "dist/communicator.h"

namespace loom {

namespace {

constexpr int kMaxThreads = 4096;   // RNG streams are keyed rank * kMaxThreads + thread

// Note [Where word2vec options are checked]
// Every key's own range is the [word2vec] schema's (launch/kinds/word2vec.h) and is
// checked once, by the config loader. What is checked here, once, in the constructor, is
// what no single key's range can promise: the rules between keys, as ConfigErrors that
// name them. Options built directly (tests) outside the schema's ranges break an
// invariant of this code: LOOM_ASSERT.
void check_options(const Word2VecOptions& o) {
  LOOM_ASSERT(o.dim >= 1 && o.window >= 1 && o.negative >= 0 && o.epochs >= 1 && o.threads >= 1 &&
                  o.step_words >= 1 && o.max_sentence_words >= 1 && o.rare_every >= 1,
              "Word2VecOptions outside the ranges of the [word2vec] schema");
  LOOM_CHECK(o.negative > 0 || o.hs, ConfigError,
             "word2vec.negative = 0 and word2vec.hs = false: nothing to train (set word2vec.negative > 0 or "
             "word2vec.hs = true)");
  LOOM_CHECK(o.threads <= kMaxThreads, ConfigError,
             "word2vec.threads: " + std::to_string(o.threads) + " threads per rank is above " +
                 std::to_string(kMaxThreads) + " (word2vec.threads = 0 takes run.threads; set word2vec.threads "
                 "to at most " + std::to_string(kMaxThreads) + ")");
}

// SplitMix64: the fast per-sentence generator, seeded from the thread's Philox stream (so
// a thread's whole randomness is the stream position, two words per sentence).
struct SplitMix {
  uint64_t s;
  uint64_t next() {
    uint64_t z = (s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  void skip(uint64_t n) { s += n * 0x9E3779B97F4A7C15ull; }   // as n calls of next()
};

// Note [Prefetching the next window]
// A window's rows are random rows of 55 MB of tables (wiki17m): the centre word's and the K
// noise words' rows of syn1neg, the context rows of syn0. Most miss the 2 MB L2, and the
// kernel waited on them: it reads a row, then updates it, one row after the other. The
// next window's rows are known before the current window is computed - its centre word is
// kept[pos + 1], its noise words are the draws after the current ones (a copy of the
// SplitMix state draws them ahead without moving the real stream), and the one context
// word it can add is kept[pos + 1 + window] - so train_sentence asks for their cache lines
// (prefetch for writing) before running the current window. Same draws, same bits: the
// next window takes those noise words instead of drawing them again and moves the stream
// past them (SplitMix's state is a counter). word2vec.prefetch = false turns it off (for
// measuring; Word2VecTrain.PrefetchLeavesTheBitsAlone compares the two).
// Measured, wiki17m, 1 x 1, 2.6 GHz host, interleaved runs: CBOW 2.70-2.81 M words/s
// without, 3.92-4.02 M with; skip-gram 1.23 M -> 1.40 M. Two windows ahead: 3.60-3.88 M,
// three: 3.76-3.82 M (the lines of the next window are evicted or not yet needed).
// Taking the early draws instead of drawing again: CBOW 4.60-4.62 -> 4.76-4.84 M words/s.
// Hierarchical softmax does not gain from it (CBOW HS 2.34-2.35 M with the next word's
// inner nodes prefetched, 2.31-2.42 M without): the nodes near the root are always cached.

// Asks for a row's cache lines ahead of its use, for writing.
inline void prefetch_row(const float* row, int64_t D) {
  const char* p = reinterpret_cast<const char*>(row);
  const int64_t bytes = D * static_cast<int64_t>(sizeof(float));
  for (int64_t at = 0; at < bytes; at += 64) __builtin_prefetch(p + at, 1, 3);
  __builtin_prefetch(p + bytes - 1, 1, 3);
}

}  // namespace

struct Word2Vec::ThreadState {
  ThreadState(const Word2VecOptions& o, uint64_t stream)
      : rng(o.seed, stream, RngPurpose::kData),
        scratch(static_cast<int>(2 * o.window), static_cast<int>(1 + o.negative), o.dim),
        sentence(static_cast<size_t>(o.max_sentence_words)),
        context(static_cast<size_t>(2 * o.window)),
        outputs(static_cast<size_t>(1 + o.negative)),
        ahead(static_cast<size_t>(o.negative)) {}
  Rng rng;
  Word2VecScratch scratch;
  std::vector<int32_t> sentence;   // (max_sentence_words,) the kept words of a sentence
  std::vector<int32_t> context;    // (2 window,)
  std::vector<int32_t> outputs;    // (1 + negative,)
  std::vector<int32_t> ahead;      // (negative,) the next window's noise draws, made early
  std::vector<uint8_t> touched;    // (V,) with a kDelta sync: 1 = syn0 row changed since the last sync
};

Word2VecArch parse_word2vec_arch(std::string_view name) {
  if (name == "skipgram") return Word2VecArch::kSkipGram;
  if (name == "cbow") return Word2VecArch::kCbow;
  throw ConfigError("word2vec.arch: unknown architecture '" + std::string(name) + "' (skipgram|cbow)");
}

Word2VecSync parse_word2vec_sync(std::string_view name) {
  if (name == "delta") return Word2VecSync::kDelta;
  if (name == "average") return Word2VecSync::kAverage;
  throw ConfigError("word2vec.sync: unknown scheme '" + std::string(name) + "' (delta|average)");
}

const char* word2vec_arch_name(Word2VecArch arch) { return arch == Word2VecArch::kCbow ? "cbow" : "skipgram"; }
const char* word2vec_sync_name(Word2VecSync sync) { return sync == Word2VecSync::kDelta ? "delta" : "average"; }

Word2Vec::Word2Vec(const Word2VecOptions& options, Communicator& comm, const Vocab& vocab, TokenizedShard data)
    : options_(options), comm_(comm), vocab_(vocab), data_(std::move(data)) {
  check_options(options_);   // the one check (Note [Where word2vec options are checked])
  const int64_t V = vocab_.size(), D = options_.dim;
  LOOM_CHECK(V > 0, DataError, "word2vec: the vocabulary is empty (check vocab.min_count and the corpus)");
  LOOM_CHECK(!options_.hs || V >= 2, DataError, "word2vec: hierarchical softmax needs at least 2 words");
  for (int32_t id : data_.ids) LOOM_ASSERT(id >= 0 && id < V, "word2vec: word id out of range");
  params_.declare("syn0", {V, D});
  if (options_.negative > 0) params_.declare("syn1neg", {V, D});
  if (options_.hs) params_.declare("syn1", {V - 1, D});
  params_.finalize();
  view_.syn0 = params_.value("syn0").f32();
  view_.syn1neg = options_.negative > 0 ? params_.value("syn1neg").f32() : nullptr;
  view_.syn1 = options_.hs ? params_.value("syn1").f32() : nullptr;
  view_.D = D;
  if (options_.hs) huffman_ = build_huffman(vocab_.counts());
  if (options_.negative > 0) noise_ = NoiseTable(vocab_.counts(), options_.ns_power);
  int64_t count_sum = 0;
  for (int64_t c : vocab_.counts()) count_sum += c;
  keep_.resize(static_cast<size_t>(V));
  for (int64_t w = 0; w < V; ++w) {
    const double keep = subsample_keep(vocab_.count(static_cast<int32_t>(w)), count_sum, options_.sample);
    keep_[static_cast<size_t>(w)] = keep >= 1.0 ? (uint64_t{1} << 32) : static_cast<uint64_t>(std::ldexp(keep, 32));
  }
  init_params();
  setup_steps();
  for (int t = 0; t < options_.threads; ++t)
    threads_.push_back(std::make_unique<ThreadState>(
        options_, static_cast<uint64_t>(comm_.rank()) * kMaxThreads + static_cast<uint64_t>(t)));
  plan_sync();
  if (comm_.size() > 1 && options_.sync == Word2VecSync::kDelta) {
    base_ = Buffer(static_cast<size_t>(params_.total_elements()) * sizeof(float));
    std::memcpy(base_.data(), params_.values().data(), base_.size());
    touched_.assign(static_cast<size_t>(V), 0);
    for (auto& t : threads_) t->touched.assign(static_cast<size_t>(V), 0);
    std::string why;
    peers_ = PeerMemory::open(comm_, {{params_.values().data(), base_.size()}, {base_.data(), base_.size()}},
                              options_.peer_memory, &why);
    if (!options_.peer_memory) why = "comm.peer_memory = false";
    log::info("word2vec", peers_ != nullptr ? "replicas summed in place across the ranks' memory (cross-memory attach)"
                                            : "replicas summed by MPI allreduce (no cross-memory attach: " + why + ")");
  }
}

int64_t word2vec_hot_rows(const std::vector<double>& expected, double above, const HuffmanTree* tree,
                          int64_t* nodes) {
  int64_t words = 0;
  if (nodes != nullptr) *nodes = 0;
  if (above <= 0) return 0;
  while (words < static_cast<int64_t>(expected.size()) && expected[static_cast<size_t>(words)] >= above) ++words;
  if (tree == nullptr || nodes == nullptr || tree->size() < 2) return words;
  std::vector<double> visits(static_cast<size_t>(tree->size() - 1), 0.0);   // (V - 1,)
  for (int64_t w = 0; w < tree->size(); ++w)
    for (int64_t j = tree->offset[static_cast<size_t>(w)]; j < tree->offset[static_cast<size_t>(w) + 1]; ++j)
      visits[static_cast<size_t>(tree->point[static_cast<size_t>(j)])] += expected[static_cast<size_t>(w)];
  int64_t first = static_cast<int64_t>(visits.size());
  while (first > 0 && visits[static_cast<size_t>(first - 1)] >= above) --first;
  *nodes = static_cast<int64_t>(visits.size()) - first;
  return words;
}

void Word2Vec::collect_touched() {
  for (auto& t : threads_) {
    for (size_t w = 0; w < touched_.size(); ++w) touched_[w] |= t->touched[w];
    std::fill(t->touched.begin(), t->touched.end(), uint8_t{0});
  }
}

// The hot rows and the segments a kDelta sync works through: every parameter element once,
// in buffer order, the hot row ranges averaged and the rest summed.
void Word2Vec::plan_sync() {
  const int64_t V = vocab_.size(), D = options_.dim;
  const double per_step = static_cast<double>(total_words_) / comm_.size() / static_cast<double>(steps_per_epoch_);
  int64_t count_sum = 0;
  for (int64_t c : vocab_.counts()) count_sum += c;
  std::vector<double> expected(static_cast<size_t>(V));   // (V,) kept occurrences per rank and step
  for (int64_t w = 0; w < V; ++w)
    expected[static_cast<size_t>(w)] = keep_probability(static_cast<int32_t>(w)) *
                                       static_cast<double>(vocab_.count(static_cast<int32_t>(w))) /
                                       static_cast<double>(std::max<int64_t>(1, count_sum)) * per_step;
  hot_words_ = word2vec_hot_rows(expected, options_.hot_threshold(), options_.hs ? &huffman_ : nullptr, &hot_nodes_);
  // The vocabulary is ordered by count, so the rare words are the last rows.
  rare_rows_from_ = V;
  if (options_.rare_every > 1 && options_.sync == Word2VecSync::kDelta)
    while (rare_rows_from_ > 0 && expected[static_cast<size_t>(rare_rows_from_ - 1)] < options_.rare_below) --rare_rows_from_;
  struct Range { int64_t begin, end; };
  std::vector<Range> hot;   // element ranges of the buffer, ascending
  auto entry_offset = [&](const char* name) {
    for (const ParamStore::Entry& e : params_.entries())
      if (e.name == name) return e.offset;
    return int64_t{-1};
  };
  if (hot_words_ > 0) {
    hot.push_back({entry_offset("syn0"), entry_offset("syn0") + hot_words_ * D});
    if (options_.negative > 0) hot.push_back({entry_offset("syn1neg"), entry_offset("syn1neg") + hot_words_ * D});
  }
  if (hot_nodes_ > 0) {
    const int64_t end = entry_offset("syn1") + (V - 1) * D;
    hot.push_back({end - hot_nodes_ * D, end});
  }
  std::sort(hot.begin(), hot.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
  // syn0 past its hot rows is summed over the rows some rank touched: a step of 2^18 words
  // on wiki17m touches about a quarter of them per rank (syn1neg rows are touched by the
  // negatives nearly all, so they stay dense).
  const int64_t sparse_begin = entry_offset("syn0") + hot_words_ * D, sparse_end = entry_offset("syn0") + V * D;
  sync_segments_.clear();
  auto add_plain = [&](int64_t from, int64_t to) {   // summed; the sparse part of syn0 on its own
    for (int64_t at = from; at < to;) {
      const bool sparse = at >= sparse_begin && at < sparse_end;
      const int64_t until = sparse ? std::min(to, sparse_end) : (at < sparse_begin ? std::min(to, sparse_begin) : to);
      sync_segments_.push_back({at, until - at, sparse ? SyncKind::kSumTouchedRows : SyncKind::kSum});
      at = until;
    }
  };
  int64_t at = 0;
  for (const Range& r : hot) {
    add_plain(at, r.begin);
    sync_segments_.push_back({r.begin, r.end - r.begin, SyncKind::kAverage});
    at = r.end;
  }
  add_plain(at, params_.total_elements());
}

bool Word2Vec::full_sync_after(int64_t step) const {
  const int64_t every = options_.rare_every;
  return comm_.size() == 1 || options_.sync != Word2VecSync::kDelta || every <= 1 || rare_rows_from_ >= vocab_.size() ||
         (step + 1) % every == 0 || step + 1 >= total_steps_;
}

Word2Vec::~Word2Vec() = default;

// word2vec's initialisation: syn0 uniform in [-0.5, 0.5) / D, the output layers zero; from
// one stream keyed by (seed, 0, kInit), so every rank starts from the same parameters.
void Word2Vec::init_params() {
  std::memset(params_.values().data(), 0, static_cast<size_t>(params_.total_elements()) * sizeof(float));
  Rng rng(options_.seed, 0, RngPurpose::kInit);
  const float scale = 1.0f / static_cast<float>(options_.dim);
  Tensor syn0 = params_.value("syn0");
  float* v = syn0.f32();
  for (int64_t i = 0; i < syn0.numel(); ++i) v[i] = (rng.uniform_f32() - 0.5f) * scale;
}

void Word2Vec::setup_steps() {
  const int world = comm_.size();
  shard_words_.assign(static_cast<size_t>(world), 0);
  int64_t mine = data_.words();
  comm_.allgather(Tensor::of(&mine, 1), Tensor::of(shard_words_.data(), world));
  total_words_ = 0;
  for (int64_t n : shard_words_) total_words_ += n;
  const int64_t largest = *std::max_element(shard_words_.begin(), shard_words_.end());
  steps_per_epoch_ = std::max<int64_t>(1, (largest + options_.step_words - 1) / options_.step_words);
  total_steps_ = options_.epochs * steps_per_epoch_;
}

float Word2Vec::learning_rate(double progress) const {
  const double alpha = options_.initial_alpha();
  const double all = static_cast<double>(options_.epochs) * static_cast<double>(total_words_) + 1.0;
  return static_cast<float>(alpha * std::max(1.0 - progress / all, options_.min_alpha_ratio));
}

// One sentence: subsample, then one window per kept word. Returns the summed loss.
double Word2Vec::train_sentence(ThreadState& t, int64_t sentence, float lr, int64_t* examples) {
  SplitMix r{t.rng.next_u64()};
  const int64_t begin = data_.starts[static_cast<size_t>(sentence)], end = data_.starts[static_cast<size_t>(sentence) + 1];
  int32_t* kept = t.sentence.data();
  int L = 0;
  for (int64_t i = begin; i < end; ++i) {
    const int32_t w = data_.ids[static_cast<size_t>(i)];
    if ((r.next() >> 32) < keep_[static_cast<size_t>(w)]) kept[L++] = w;
  }
  // Every kept word is a context word of its neighbours' windows (a superset is harmless).
  if (!t.touched.empty())
    for (int i = 0; i < L; ++i) t.touched[static_cast<size_t>(kept[i])] = 1;
  const int window = static_cast<int>(options_.window), K = static_cast<int>(options_.negative);
  const bool skipgram = options_.arch == Word2VecArch::kSkipGram;
  int32_t* context = t.context.data();
  int32_t* outputs = t.outputs.data();
  int32_t* ahead = t.ahead.data();
  int ahead_for = -1;   // the window whose noise words `ahead` holds, if any
  double loss = 0.0;
  for (int pos = 0; pos < L; ++pos) {
    const int32_t w = kept[pos];
    const int reach = window - static_cast<int>(r.next() % static_cast<uint64_t>(window));   // [1, window]
    int B = 0;
    for (int c = std::max(0, pos - reach); c <= std::min(L - 1, pos + reach); ++c)
      if (c != pos) context[B++] = kept[c];
    if (B == 0) continue;
    if (options_.hs) {
      const int64_t off = huffman_.offset[static_cast<size_t>(w)];
      const HuffmanPath path{huffman_.point.data() + off, huffman_.code.data() + off, huffman_.length(w)};
      loss += skipgram ? sg_hs_window(view_, context, B, path, lr, t.scratch)
                       : cbow_hs_window(view_, context, B, path, lr, t.scratch);
    }
    // outputs := the centre word, then K noise words (word2vec skips a draw of the word itself).
    auto draw_outputs = [&] {
      int N = 0;
      outputs[N++] = w;
      for (int k = 0; k < K; ++k) {
        const int32_t noise = noise_.sample(r.next());
        if (noise != w) outputs[N++] = noise;
      }
      return N;
    };
    if (K > 0 && skipgram && !options_.shared_negatives) {
      // One pair at a time, each with its own negatives (the original tool's order).
      for (int b = 0; b < B; ++b) loss += sg_ns_window(view_, context + b, 1, outputs, draw_outputs(), lr, t.scratch);
    } else if (K > 0) {
      int N = 0;
      if (ahead_for == pos) {   // drawn by the previous window: the same draws, taken now
        outputs[N++] = w;
        for (int k = 0; k < K; ++k)
          if (ahead[k] != w) outputs[N++] = ahead[k];
        r.skip(static_cast<uint64_t>(K));
      } else {
        N = draw_outputs();
      }
      if (options_.prefetch && pos + 1 < L) {   // Note [Prefetching the next window]
        SplitMix peek = r;
        peek.next();   // the next window's reach
        const int64_t D = options_.dim;
        prefetch_row(view_.syn1neg + static_cast<int64_t>(kept[pos + 1]) * D, D);
        for (int k = 0; k < K; ++k) {
          ahead[k] = noise_.sample(peek.next());
          prefetch_row(view_.syn1neg + static_cast<int64_t>(ahead[k]) * D, D);
        }
        ahead_for = pos + 1;
        if (pos + 1 + window < L) prefetch_row(view_.syn0 + static_cast<int64_t>(kept[pos + 1 + window]) * D, D);
      }
      loss += skipgram ? sg_ns_window(view_, context, B, outputs, N, lr, t.scratch)
                       : cbow_ns_window(view_, context, B, outputs, N, lr, t.scratch);
    }
    *examples += skipgram ? B : 1;
  }
  return loss;
}

// The sentences that start in shard words [word_begin, word_end); the learning rate
// follows global_begin + global_words * (fraction of this range done), updated per sentence.
StepStats Word2Vec::train_range(ThreadState& t, int64_t word_begin, int64_t word_end, double global_begin,
                                double global_words) {
  const auto& starts = data_.starts;
  const int64_t first = std::lower_bound(starts.begin(), starts.end(), word_begin) - starts.begin();
  const int64_t last = std::lower_bound(starts.begin(), starts.end(), word_end) - starts.begin();
  const double span = static_cast<double>(std::max<int64_t>(1, word_end - word_begin));
  StepStats stats;
  int64_t done = 0;
  for (int64_t s = first; s < last && s < data_.sentences(); ++s) {
    const float lr = learning_rate(global_begin + global_words * std::min(1.0, static_cast<double>(done) / span));
    stats.loss_sum += train_sentence(t, s, lr, &stats.examples);
    done += starts[static_cast<size_t>(s) + 1] - starts[static_cast<size_t>(s)];
  }
  stats.items = done;
  return stats;
}

StepStats Word2Vec::train_step(const StepContext& ctx) {
  LOOM_ASSERT(epoch_ < options_.epochs, "word2vec: train_step past the last epoch");
  const int64_t n = data_.words();
  const int64_t begin = slice_begin(n, slice_), end = slice_begin(n, slice_ + 1);
  double global_begin = static_cast<double>(epoch_) * static_cast<double>(total_words_), global_slice = 0;
  int64_t slice_words = 0;
  for (int64_t nr : shard_words_) {
    global_begin += static_cast<double>(slice_begin(nr, slice_));
    slice_words += slice_begin(nr, slice_ + 1) - slice_begin(nr, slice_);
  }
  global_slice = static_cast<double>(slice_words);
  const int T = options_.threads;
  StepStats stats;
  if (T == 1) {
    stats = train_range(*threads_[0], begin, end, global_begin, global_slice);
  } else {
    double loss = 0;
    int64_t examples = 0, items = 0;
#pragma omp parallel for num_threads(T) schedule(static, 1) reduction(+ : loss, examples, items)
    for (int t = 0; t < T; ++t) {
      const int64_t b = begin + (end - begin) * t / T, e = begin + (end - begin) * (t + 1) / T;
      // Each thread's fraction stands for the whole slice's (they run side by side).
      StepStats s = train_range(*threads_[static_cast<size_t>(t)], b, e, global_begin, global_slice);
      loss += s.loss_sum;
      examples += s.examples;
      items += s.items;
    }
    stats = StepStats{loss, examples, items};
  }
  if (comm_.size() > 1) {
    // The barrier separates waiting for the slowest rank from the sync's own cost (it costs
    // microseconds against steps of tenths of a second).
    using Clock = std::chrono::steady_clock;
    const auto t0 = Clock::now();
    comm_.barrier();
    const auto t1 = Clock::now();
    synchronize(full_sync_after(ctx.step));
    wait_s_ += std::chrono::duration<double>(t1 - t0).count();
    sync_s_ += std::chrono::duration<double>(Clock::now() - t1).count();
  }
  words_seen_ += slice_words;
  // The rate decays linearly within the step; report the one it reached at the step's end.
  stats.lr = learning_rate(global_begin + global_slice);
  if (++slice_ == steps_per_epoch_) {
    slice_ = 0;
    ++epoch_;
  }
  return stats;
}

// "data": {epoch, slice, steps_per_epoch, shard words}; "rng": every thread's stream position.
std::vector<RankState> Word2Vec::rank_state() const {
  std::vector<uint64_t> rng;
  for (const auto& t : threads_) rng.push_back(t->rng.position());
  return {RankState{"data", {static_cast<uint64_t>(epoch_), static_cast<uint64_t>(slice_),
                             static_cast<uint64_t>(steps_per_epoch_), static_cast<uint64_t>(data_.words())}},
          RankState{"rng", rng}};
}

void Word2Vec::seek_rng(const std::vector<uint64_t>& positions) {
  for (size_t t = 0; t < threads_.size(); ++t) threads_[t]->rng.seek(positions[t]);
}

std::optional<VocabView> Word2Vec::vocab() const { return VocabView{&vocab_.tokens(), &vocab_.counts()}; }

std::vector<float> Word2Vec::output_vectors() const {
  const float* syn0 = view_.syn0;
  return std::vector<float>(syn0, syn0 + static_cast<int64_t>(vocab_.size()) * options_.dim);
}

std::unique_ptr<Word2Vec> make_word2vec(const Word2VecOptions& options, Communicator& comm, const Vocab& vocab,
                                        TokenizedShard data) {
  return std::make_unique<Word2Vec>(options, comm, vocab, std::move(data));
}

}  // namespace loom
