// build_cooccurrence: count (PairCounter), exchange (alltoallv rounds), merge, shuffle.
#include "io/cooccur.h"

#include <sys/resource.h>

#include <algorithm>
#include <bit>
#include <chrono>
#include <numeric>

#include "core/error.h"
#include "core/log.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "dist/communicator.h"
#include "io/cooccur_runs.h"
#include "io/tokenize.h"

namespace loom {
namespace {
using cooccur::KV;
using cooccur::RunStore;

constexpr int kMaxWindow = 40;

// Key layout: key = ((row % W) * rows_per_owner + row / W) * V + col, so keys sort by
// (owner, row, col) and owner q holds keys [q * rows_per_owner * V, (q+1) * ...).
struct KeyCodec {
  uint64_t vocab, world, rows_per_owner;
  uint64_t owner_span() const { return rows_per_owner * vocab; }
  uint64_t row_base(uint64_t row) const { return ((row % world) * rows_per_owner + row / world) * vocab; }
  void decode(uint64_t key, int32_t& row, int32_t& col) const {
    uint64_t q = key / owner_span(), rem = key % owner_span();
    row = static_cast<int32_t>((rem / vocab) * world + q);
    col = static_cast<int32_t>(rem % vocab);
  }
};

// LSD radix sort of packed keys with `bits` significant bits; scratch has data's size.
void radix_sort(std::vector<uint64_t>& data, std::vector<uint64_t>& scratch, size_t n, int bits) {
  constexpr int kDigit = 11;
  std::vector<size_t> count(size_t{1} << kDigit);
  for (int shift = 0; shift < bits; shift += kDigit) {
    std::fill(count.begin(), count.end(), 0);
    for (size_t i = 0; i < n; ++i) ++count[(data[i] >> shift) & ((1u << kDigit) - 1)];
    if (std::ranges::any_of(count, [&](size_t c) { return c == n; })) continue;
    size_t sum = 0;
    for (auto& c : count) { size_t t = c; c = sum; sum += t; }
    for (size_t i = 0; i < n; ++i) scratch[count[(data[i] >> shift) & ((1u << kDigit) - 1)]++] = data[i];
    std::swap(data, scratch);
  }
}

// Counts pair increments of one rank into sorted runs.
class PairCounter {
 public:
  PairCounter(const KeyCodec& codec, int window, bool symmetric, size_t capacity, RunStore& store)
      : codec_(codec), window_(window), symmetric_(symmetric), store_(store),
        buf_(capacity), scratch_(capacity), history_(static_cast<size_t>(window)),
        row_base_(codec.vocab) {
    uint64_t lcm = 1;
    for (int d = 1; d <= window; ++d) lcm = std::lcm(lcm, static_cast<uint64_t>(d));
    weight_.assign(static_cast<size_t>(window) + 1, 0);
    for (int d = 1; d <= window; ++d) weight_[static_cast<size_t>(d)] = lcm / static_cast<uint64_t>(d);
    unit_ = lcm;
    dbits_ = std::bit_width(static_cast<unsigned>(window));
    key_bits_ = std::bit_width(codec.world * codec.owner_span());
    if (key_bits_ + dbits_ > 64)
      throw DataError("vocabulary of " + std::to_string(codec.vocab) + " words is too large for "
                      "the co-occurrence key (lower vocab.max_vocab)");
    for (uint64_t r = 0; r < codec.vocab; ++r) row_base_[r] = codec.row_base(r);
  }
  uint64_t unit() const { return unit_; }
  int64_t increments() const { return increments_; }

  void reset_line() { seen_ = 0; }
  void push_history(int32_t id) { history_[seen_++ % history_.size()] = id; }
  void add(int32_t id) {
    size_t w = history_.size();
    uint64_t lim = std::min<uint64_t>(seen_, w);
    if (n_ + 2 * lim > buf_.size()) flush();
    for (uint64_t k = 1; k <= lim; ++k) {
      int32_t prev = history_[(seen_ - k) % w];
      buf_[n_++] = ((row_base_[static_cast<size_t>(prev)] + static_cast<uint64_t>(id)) << dbits_) | k;
      if (symmetric_)
        buf_[n_++] = ((row_base_[static_cast<size_t>(id)] + static_cast<uint64_t>(prev)) << dbits_) | k;
    }
    increments_ += static_cast<int64_t>(symmetric_ ? 2 * lim : lim);
    push_history(id);
  }
  void flush() {
    if (n_ == 0) return;
    radix_sort(buf_, scratch_, n_, key_bits_ + dbits_);
    std::vector<KV> run;
    uint64_t mask = (uint64_t{1} << dbits_) - 1;
    for (size_t i = 0; i < n_; ++i) {
      uint64_t key = buf_[i] >> dbits_, v = weight_[buf_[i] & mask];
      if (!run.empty() && run.back().key == key) run.back().value += v;
      else run.push_back({key, v});
    }
    n_ = 0;
    store_.add(std::move(run));
  }

 private:
  KeyCodec codec_;
  int window_;
  bool symmetric_;
  RunStore& store_;
  std::vector<uint64_t> buf_, scratch_;   // (capacity) packed key << dbits | distance
  std::vector<int32_t> history_;          // (window) ring of the last kept ids of the line
  std::vector<uint64_t> row_base_;        // (V)
  std::vector<uint64_t> weight_;          // (window + 1) L / d
  uint64_t unit_ = 1, seen_ = 0;
  size_t n_ = 0;
  int dbits_ = 0, key_bits_ = 0;
  int64_t increments_ = 0;
};

// Fills the counter's history with the kept tokens that precede a shard starting mid-line.
void load_context(const CorpusShard& shard, const TextChunk& chunk, const Vocab& vocab,
                  const CorpusOptions& corpus, size_t window, PairCounter& counter) {
  for (size_t bytes = 4096;; bytes *= 4) {
    CorpusShard::Before before = shard.text_before(chunk.begin, bytes);
    std::vector<int32_t> ids;
    bool skip_first = !before.complete && !before.text.empty() && !is_space(before.text[0]);
    for_each_token(before.text, corpus.max_token_bytes, [&](std::string_view t) {
      if (skip_first) { skip_first = false; return; }
      if (int32_t id = vocab.find(t); id >= 0) ids.push_back(id);
    }, [] {});
    if (before.complete || ids.size() >= window) {
      size_t from = ids.size() > window ? ids.size() - window : 0;
      for (size_t i = from; i < ids.size(); ++i) counter.push_history(ids[i]);
      return;
    }
  }
}

int64_t count_shard(const CorpusLayout& layout, const CorpusOptions& corpus, const Vocab& vocab,
                    int rank, int world, size_t window, PairCounter& counter) {
  CorpusShard shard(layout, corpus, rank, world);
  TextChunk chunk;
  uint64_t prev_end = UINT64_MAX;
  int64_t tokens = 0;
  while (shard.next(chunk)) {
    if (chunk.begin != prev_end) {
      counter.reset_line();
      if (chunk.continues_line) load_context(shard, chunk, vocab, corpus, window, counter);
    }
    for_each_token(chunk.text, corpus.max_token_bytes, [&](std::string_view t) {
      ++tokens;
      if (int32_t id = vocab.find(t); id >= 0) counter.add(id);
    }, [&] { counter.reset_line(); });
    if (!chunk.line_open) counter.reset_line();
    prev_end = chunk.end;
  }
  counter.flush();
  return tokens;
}

}  // namespace

namespace cooccur_detail {
int64_t exchange(Communicator& comm, RunStore& sent, RunStore& received, size_t cap);
}

CooccurResult build_cooccurrence(Communicator& comm, const Vocab& vocab, const CorpusLayout& layout,
                                 const CorpusOptions& corpus, const CooccurOptions& options,
                                 const std::string& out_dir) {
  if (options.window < 1 || options.window > kMaxWindow)
    throw ConfigError("cooccur.window = " + std::to_string(options.window) + " is out of range 1.." +
                      std::to_string(kMaxWindow));
  auto t0 = std::chrono::steady_clock::now();
  const uint64_t world = static_cast<uint64_t>(comm.size());
  const uint64_t vsize = static_cast<uint64_t>(std::max(vocab.size(), 1));
  KeyCodec codec{vsize, world, (vsize + world - 1) / world};
  std::vector<uint64_t> bounds;
  for (uint64_t q = 0; q < world; ++q) bounds.push_back(q * codec.owner_span());
  bounds.push_back(UINT64_MAX);
  size_t budget = static_cast<size_t>(std::max(options.memory_gb, 1e-6) * double(1ull << 30));
  std::string spill = options.spill_dir.empty() ? (out_dir.empty() ? "." : out_dir) : options.spill_dir;
  std::string tag = "cooccur-r" + std::to_string(comm.rank());
  RunStore sent(spill, tag + "-count", budget / 2, bounds);
  int64_t stats[4] = {0, 0, 0, 0};   // tokens, increments, spills, nnz
  uint64_t unit = 1;
  {
    PairCounter counter(codec, options.window, options.symmetric, std::max<size_t>(budget / 64, 4096), sent);
    stats[0] = count_shard(layout, corpus, vocab, comm.rank(), comm.size(),
                           static_cast<size_t>(options.window), counter);
    stats[1] = counter.increments();
    unit = counter.unit();
  }
  log::info("cooccur", "counted " + std::to_string(stats[1]) + " increments on rank 0 in " +
                           std::to_string(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count()) + " s");
  RunStore received(spill, tag + "-recv", budget / 2, {0, UINT64_MAX});
  size_t cap = std::max<size_t>(budget / (64 * sizeof(KV) * world), 1024);
  cooccur_detail::exchange(comm, sent, received, cap);
  stats[2] = sent.spills() + received.spills();
  sent.clear();
  CooccurResult result;
  result.partition = comm.rank();
  result.num_partitions = comm.size();
  auto cursors = received.cursors(0);
  double inv_unit = static_cast<double>(unit);
  cooccur::merge_runs(cursors, [&](uint64_t key, uint64_t value) {
    CooccurEntry e;
    codec.decode(key, e.row, e.col);
    e.value = static_cast<double>(value) / inv_unit;
    result.entries.push_back(e);
  });
  cursors.clear();
  received.clear();
  Rng rng(options.seed, static_cast<uint64_t>(comm.rank()), RngPurpose::kShuffle);
  for (size_t i = result.entries.size(); i > 1; --i)
    std::swap(result.entries[i - 1], result.entries[rng.below(i)]);
  stats[3] = static_cast<int64_t>(result.entries.size());
  comm.allreduce(Tensor::of(stats, 4), ReduceOp::kSum);
  struct rusage ru {};
  ::getrusage(RUSAGE_SELF, &ru);
  result.stats = {stats[0], stats[1], stats[2], stats[3],
                  std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                  static_cast<double>(ru.ru_maxrss) / (1024.0 * 1024.0)};
  if (!out_dir.empty()) {
    result.h5_path = out_dir + "/cooccur.part-" + std::to_string(comm.rank()) + "-of-" +
                     std::to_string(comm.size()) + ".h5";
    write_cooccur_h5(result.h5_path, result, vocab, options);
  }
  log::info("cooccur", std::to_string(stats[0]) + " tokens, " + std::to_string(stats[3]) +
                           " non-zeros, " + std::to_string(stats[2]) + " spills, " +
                           std::to_string(result.stats.seconds) + " s, " +
                           std::to_string(static_cast<double>(stats[0]) / result.stats.seconds) +
                           " tokens/s, peak RSS rank 0 " + std::to_string(result.stats.peak_rss_gb) + " GB");
  return result;
}

CooccurResult build_cooccurrence(Communicator& comm, const Vocab& vocab, const CorpusOptions& corpus,
                                 const CooccurOptions& options, const std::string& out_dir) {
  CorpusLayout layout = CorpusLayout::scan(comm, corpus);
  return build_cooccurrence(comm, vocab, layout, corpus, options, out_dir);
}

}  // namespace loom
