// Counting threads of the co-occurrence build: PairCounter (Note [Dense block]), sub-shards
// (Note [Counting threads]) and progress lines.
#include "models/glove/cooccur_count.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <mutex>
#include <numeric>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "core/measure.h"
#include "core/work_meter.h"
#include "io/tokenize.h"

namespace loom::cooccur {
namespace {

constexpr size_t kSparseMaxEntries = size_t{1} << 22;    // 32 MiB of keys: cache-friendly sorts
constexpr size_t kDenseMaxBytes = size_t{128} << 20;     // per table: 92% of wiki17m's increments
constexpr auto kProgressEvery = std::chrono::seconds(5);

// Shared between the counting threads and the progress reporter.
struct Progress {
  std::atomic<uint64_t> bytes_done{0}, bytes_total{0}, tokens{0}, run_entries{0};
  std::atomic<int64_t> spills{0};
  std::atomic<bool> stop{false};
};

// LSD radix sort of n packed keys with `bits` significant bits; scratch has data's size.
// One pass computes every digit's histogram; digits that are constant are skipped.
void radix_sort(std::vector<uint64_t>& data, std::vector<uint64_t>& scratch, size_t n, int bits) {
  constexpr int kDigit = 11;
  constexpr size_t kBuckets = size_t{1} << kDigit;
  const int digits = (bits + kDigit - 1) / kDigit;
  std::vector<size_t> count(static_cast<size_t>(digits) * kBuckets, 0);   // (digits, buckets)
  for (size_t i = 0; i < n; ++i) {
    uint64_t v = data[i];
    for (int d = 0; d < digits; ++d) ++count[static_cast<size_t>(d) * kBuckets + ((v >> (d * kDigit)) & (kBuckets - 1))];
  }
  for (int d = 0; d < digits; ++d) {
    size_t* c = count.data() + static_cast<size_t>(d) * kBuckets;
    if (std::any_of(c, c + kBuckets, [&](size_t x) { return x == n; })) continue;
    size_t sum = 0;
    for (size_t b = 0; b < kBuckets; ++b) { size_t t = c[b]; c[b] = sum; sum += t; }
    const int shift = d * kDigit;
    for (size_t i = 0; i < n; ++i) scratch[c[(data[i] >> shift) & (kBuckets - 1)]++] = data[i];
    std::swap(data, scratch);
  }
}

// Rows of the dense block (Note [Dense block]) for product P: row r holds cols
// [first, end); symmetric tables keep only the upper triangle (first = r).
struct DenseLayout {
  struct Row {
    uint64_t cell0;   // index in the table of (row, col 0), modulo 2^64 (first may be > 0)
    uint64_t base;    // key of (row, col 0)
    uint32_t first, end;
  };
  std::vector<Row> rows;   // (V)
  uint64_t cells = 0;

  DenseLayout(const KeyCodec& codec, bool symmetric, uint64_t product) : rows(codec.vocab) {
    for (uint64_t r = 0; r < codec.vocab; ++r) {
      uint64_t first = symmetric ? r : 0;
      uint64_t end = std::max(first, std::min(codec.vocab, product / (r + 1)));
      rows[r] = {cells - first, codec.row_base(r), static_cast<uint32_t>(first), static_cast<uint32_t>(end)};
      cells += end - first;
    }
  }
};

// Largest P whose dense block has at most `cells` cells.
uint64_t dense_product(const KeyCodec& codec, bool symmetric, uint64_t cells) {
  auto count = [&](uint64_t p) {
    uint64_t total = 0;
    for (uint64_t r = 0; r < codec.vocab && total <= cells; ++r) {
      uint64_t first = symmetric ? r : 0, end = std::min(codec.vocab, p / (r + 1));
      if (end <= first) break;
      total += end - first;
    }
    return total;
  };
  uint64_t lo = 0, hi = codec.vocab * codec.vocab;
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo + 1) / 2;
    if (count(mid) <= cells) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

// Counts the pair increments of one thread: dense block in place, the rest into runs.
//
// Note [Dense cells]
// Cells are 32-bit to halve the block's cache footprint. A cell that wraps has lost
// exactly 2^32 units; the counter then pushes the pair into the sparse buffer with
// distance code 0, whose weight is 2^32, so nothing is lost. Symmetric counting adds both
// (a, b) and (b, a) the same amount, so the block keeps one cell per unordered pair (a < b
// in the upper triangle; the diagonal cell (a, a) takes both increments) and the dense run
// writes each off-diagonal cell twice.
class PairCounter {
 public:
  PairCounter(const CountSetup& s, size_t sparse_capacity, const DenseLayout& dense, RunStore& store,
              Progress& progress)
      : symmetric_(s.symmetric), store_(store), progress_(progress), layout_(dense),
        buf_(sparse_capacity), scratch_(sparse_capacity),
        history_(std::bit_ceil(static_cast<size_t>(s.window))), dense_(dense.cells, 0) {
    window_ = static_cast<uint64_t>(s.window);
    mask_ = history_.size() - 1;
    for (int d = 1; d <= s.window; ++d) unit_ = std::lcm(unit_, static_cast<uint64_t>(d));
    weight_.assign(window_ + 1, 0);
    weight_[0] = uint64_t{1} << 32;   // Note [Dense cells]
    for (uint64_t d = 1; d <= window_; ++d) weight_[d] = unit_ / d;
    LOOM_ASSERT(dense.cells == 0 || 2 * weight_[1] < weight_[0], "dense cells need 2 L < 2^32");
    dbits_ = std::bit_width(window_);
    key_bits_ = std::bit_width(s.codec.world * s.codec.owner_span());
    if (key_bits_ + dbits_ > 64)
      throw DataError("vocabulary of " + std::to_string(s.codec.vocab) + " words is too large for "
                      "the co-occurrence key (lower vocab.max_vocab)");
  }
  uint64_t unit() const { return unit_; }
  int64_t increments() const { return increments_; }
  int64_t dense_increments() const { return dense_increments_; }
  uint32_t cell(uint64_t i) const { return dense_[i]; }
  void free_dense() { std::vector<uint32_t>().swap(dense_); }

  void reset_line() { seen_ = 0; }
  void push_history(int32_t id) { history_[seen_++ & mask_] = static_cast<uint32_t>(id); }

  // Counts a chunk's kept ids in order; kLineEnd resets the context. Note [Prefetch].
  static constexpr int32_t kLineEnd = -1;
  void add_all(const std::vector<int32_t>& ids) {
    constexpr size_t kAhead = 4;
    const size_t n = ids.size();
    for (size_t i = 0; i < n; ++i) {
      if (i + kAhead < n) prefetch(ids, i + kAhead);
      if (ids[i] == kLineEnd) reset_line();
      else add(ids[i]);
    }
  }

  void add(int32_t id) {
    const uint64_t lim = std::min(seen_, window_);
    if (n_ + 2 * lim > buf_.size()) flush();
    if (symmetric_) add_symmetric(static_cast<uint32_t>(id), lim);
    else add_left(static_cast<uint32_t>(id), lim);
    increments_ += static_cast<int64_t>(symmetric_ ? 2 * lim : lim);
    push_history(id);
  }

  // Note [Prefetch]
  // Most of counting is waiting for dense cells. Ids are known a few tokens ahead, so the
  // cells that token j will touch are prefetched while token j - kAhead is counted (pairs
  // with earlier chunks are left out; a prefetch is only a hint).
  void prefetch(const std::vector<int32_t>& ids, size_t j) const {
    const int32_t id = ids[j];
    if (id == kLineEnd) return;
    const DenseLayout::Row* rows = layout_.rows.data();
    const size_t lim = std::min<size_t>(j, window_);
    for (size_t k = 1; k <= lim; ++k) {
      const int32_t prev = ids[j - k];
      if (prev == kLineEnd) return;
      uint32_t a = static_cast<uint32_t>(std::min(prev, id)), b = static_cast<uint32_t>(std::max(prev, id));
      if (!symmetric_) { a = static_cast<uint32_t>(prev); b = static_cast<uint32_t>(id); }
      if (b < rows[a].end) __builtin_prefetch(dense_.data() + rows[a].cell0 + b, 1);
    }
  }

  // Sorts the sparse buffer into one run of the store.
  void flush() {
    if (n_ == 0) return;
    radix_sort(buf_, scratch_, n_, key_bits_ + dbits_);
    run_.resize(n_);
    const uint64_t dmask = (uint64_t{1} << dbits_) - 1;
    size_t m = 0;
    for (size_t i = 0; i < n_; ++i) {
      uint64_t key = buf_[i] >> dbits_, v = weight_[buf_[i] & dmask];
      if (m > 0 && run_[m - 1].key == key) run_[m - 1].value = add_value(run_[m - 1].value, v);
      else run_[m++] = {key, v};
    }
    n_ = 0;
    progress_.run_entries += m;
    store_.add(std::vector<KV>(run_.begin(), run_.begin() + static_cast<std::ptrdiff_t>(m)));
    progress_.spills += store_.spills() - spills_seen_;
    spills_seen_ = store_.spills();
  }

 private:
  // Pairs (prev, id) and (id, prev): one cell (min, max) or two sparse entries.
  void add_symmetric(uint32_t id, uint64_t lim) {
    const DenseLayout::Row* rows = layout_.rows.data();
    uint32_t* dense = dense_.data();
    const uint32_t* history = history_.data();
    const uint64_t* weight = weight_.data();
    uint64_t* buf = buf_.data();
    size_t n = n_;
    int64_t hits = 0;
    for (uint64_t k = 1; k <= lim; ++k) {
      const uint32_t prev = history[(seen_ - k) & mask_];
      const uint32_t a = std::min(prev, id), b = std::max(prev, id);
      const DenseLayout::Row& ra = rows[a];
      if (b < ra.end) {
        uint32_t& c = dense[ra.cell0 + b];
        uint32_t old = c;
        c = old + static_cast<uint32_t>(a == b ? 2 * weight[k] : weight[k]);
        hits += 2;
        if (c < old) {   // wrapped: Note [Dense cells]
          buf[n++] = (ra.base + b) << dbits_;
          if (a != b) buf[n++] = (rows[b].base + a) << dbits_;
        }
      } else {
        buf[n++] = ((rows[prev].base + id) << dbits_) | k;
        buf[n++] = ((rows[id].base + prev) << dbits_) | k;
      }
    }
    n_ = n;
    dense_increments_ += hits;
  }

  // Pair (prev, id) only.
  void add_left(uint32_t id, uint64_t lim) {
    const DenseLayout::Row* rows = layout_.rows.data();
    uint32_t* dense = dense_.data();
    uint64_t* buf = buf_.data();
    size_t n = n_;
    int64_t hits = 0;
    for (uint64_t k = 1; k <= lim; ++k) {
      const uint32_t prev = history_[(seen_ - k) & mask_];
      const DenseLayout::Row& rp = rows[prev];
      if (id < rp.end) {
        uint32_t& c = dense[rp.cell0 + id];
        uint32_t old = c;
        c = old + static_cast<uint32_t>(weight_[k]);
        ++hits;
        if (c < old) buf[n++] = (rp.base + id) << dbits_;
      } else {
        buf[n++] = ((rp.base + id) << dbits_) | k;
      }
    }
    n_ = n;
    dense_increments_ += hits;
  }

  bool symmetric_;
  RunStore& store_;
  Progress& progress_;
  const DenseLayout& layout_;
  std::vector<uint64_t> buf_, scratch_;   // (capacity) packed key << dbits | distance code
  std::vector<KV> run_;                   // (capacity) flush's compacted run
  std::vector<uint32_t> history_;         // (bit_ceil(window)) ring of the line's last kept ids
  std::vector<uint32_t> dense_;           // (layout.cells) Note [Dense cells]
  std::vector<uint64_t> weight_;          // (window + 1) L / d; [0] = 2^32
  uint64_t window_ = 1, mask_ = 0, unit_ = 1, seen_ = 0;
  size_t n_ = 0;
  int dbits_ = 0, key_bits_ = 0;
  int64_t increments_ = 0, dense_increments_ = 0, spills_seen_ = 0;
};

// The dense blocks of all counters, summed, as one run in key order (owner, row, col).
// Row r's entries: (r, c) for c < r from the upper-triangle cells (c, r) when symmetric,
// then its own cells (r, c), c in [first, end).
std::vector<KV> dense_run(const KeyCodec& codec, const DenseLayout& layout,
                          const std::vector<std::unique_ptr<PairCounter>>& counters) {
  auto sum = [&](uint64_t i) {
    uint64_t v = 0;
    for (const auto& c : counters) v += c->cell(i);   // < 2^32 * threads
    return v;
  };
  std::vector<KV> run;
  run.reserve(layout.cells);
  for (uint64_t q = 0; q < codec.world; ++q)
    for (uint64_t r = q; r < codec.vocab; r += codec.world) {
      const DenseLayout::Row& row = layout.rows[r];
      for (uint64_t c = 0; c < row.first && r < layout.rows[c].end; ++c)
        if (uint64_t v = sum(layout.rows[c].cell0 + r)) run.push_back({row.base + c, v});
      for (uint64_t c = row.first; c < row.end; ++c)
        if (uint64_t v = sum(row.cell0 + c)) run.push_back({row.base + c, v});
    }
  return run;
}

// Fills the counter's history with the kept tokens that precede a shard starting mid-line.
// Looks back 4 KiB, then 4x as far each time, until the line's start or `window` kept
// tokens - but never more than corpus.max_line_bytes (at least 4 KiB): a long line of
// words outside the vocabulary (or one huge token) used to be read back whole into memory,
// 64 MiB for a 50 MB token. Beyond that the window does not reach, as a shard boundary
// inside a line longer than max_line_bytes (Note [Shard boundaries] in io/corpus_shard.h).
void load_context(const CorpusShard& shard, const TextChunk& chunk, const Vocab& vocab,
                  const CorpusOptions& corpus, size_t window, PairCounter& counter) {
  const size_t most = std::max<size_t>(corpus.max_line_bytes, 4096);
  for (size_t bytes = 4096;; bytes = std::min(bytes * 4, most)) {
    CorpusShard::Before before = shard.text_before(chunk.begin, bytes);
    std::vector<int32_t> ids;
    bool skip_first = !before.complete && !before.text.empty() && !is_space(before.text[0]);
    for_each_token(before.text, corpus.max_token_bytes, [&](std::string_view t) {
      if (skip_first) { skip_first = false; return; }
      if (int32_t id = vocab.find(t); id >= 0) ids.push_back(id);
    }, [] {});
    if (before.complete || ids.size() >= window || bytes >= most) {
      size_t from = ids.size() > window ? ids.size() - window : 0;
      for (size_t i = from; i < ids.size(); ++i) counter.push_history(ids[i]);
      return;
    }
  }
}

// Counts sub-shard (part, parts) into the counter; returns the tokens read.
int64_t count_shard(const CorpusLayout& layout, const CorpusOptions& corpus, const Vocab& vocab,
                    int part, int parts, size_t window, PairCounter& counter, Progress& progress) {
  CorpusShard shard(layout, corpus, part, parts);
  progress.bytes_total += shard.bytes_total();
  work_meter::add_total(static_cast<int64_t>(shard.bytes_total()));
  TextChunk chunk;
  uint64_t prev_end = UINT64_MAX;
  int64_t tokens = 0;
  std::vector<int32_t> ids;   // (kept tokens and line ends of a chunk)
  while (!progress.stop && shard.next(chunk)) {
    if (chunk.begin != prev_end) {
      counter.reset_line();
      if (chunk.continues_line) load_context(shard, chunk, vocab, corpus, window, counter);
    }
    int64_t before = tokens;
    ids.clear();
    for_each_token(chunk.text, corpus.max_token_bytes, [&](std::string_view t) {
      ++tokens;
      if (int32_t id = vocab.find(t); id >= 0) ids.push_back(id);
    }, [&] { ids.push_back(PairCounter::kLineEnd); });
    counter.add_all(ids);
    if (!chunk.line_open) counter.reset_line();
    prev_end = chunk.end;
    progress.tokens += static_cast<uint64_t>(tokens - before);
    progress.bytes_done += chunk.end - chunk.begin;
    work_meter::advance(static_cast<int64_t>(chunk.end - chunk.begin));
  }
  counter.flush();
  return tokens;
}

// Rank 0's progress line (log::info prints on rank 0 only).
void log_progress(const Progress& p, double seconds) {
  double total = static_cast<double>(std::max<uint64_t>(p.bytes_total.load(), 1));
  log::info("cooccur", "counting: " + fixed(100.0 * static_cast<double>(p.bytes_done.load()) / total, 0) +
                           "% of this rank's shard, " + fixed(static_cast<double>(p.tokens.load()) / 1e6, 1) +
                           " M tokens, " + fixed(static_cast<double>(p.tokens.load()) / 1e6 / seconds, 2) +
                           " M tokens/s, " + fixed(static_cast<double>(p.run_entries.load()) / 1e6, 1) +
                           " M sparse entries, " + std::to_string(p.spills.load()) + " spills, RSS " +
                           fixed(static_cast<double>(current_rss_bytes()) / double(1ull << 30), 2) + " GB");
}

// Runs body(t) on `threads` threads; the caller reports progress until they end. Rethrows
// the first failure after every thread has stopped.
template <typename Body>
void run_threads(int threads, Progress& progress, Body&& body) {
  std::mutex mu;
  std::condition_variable cv;
  int running = threads;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      try {
        body(t);
      } catch (...) {
        errors[static_cast<size_t>(t)] = std::current_exception();
        progress.stop = true;
      }
      std::lock_guard lock(mu);
      --running;
      cv.notify_all();
    });
  auto t0 = std::chrono::steady_clock::now();
  {
    std::unique_lock lock(mu);
    while (!cv.wait_for(lock, kProgressEvery, [&] { return running == 0; }))
      log_progress(progress, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
}

}  // namespace

uint64_t current_rss_bytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long long size = 0, resident = 0;
  int got = std::fscanf(f, "%llu %llu", &size, &resident);
  std::fclose(f);
  return got == 2 ? resident * static_cast<uint64_t>(::sysconf(_SC_PAGESIZE)) : 0;
}

CountOutput count_pairs(const CorpusLayout& layout, const CorpusOptions& corpus, const Vocab& vocab,
                        int rank, int world, const CountSetup& setup) {
  const int threads = std::max(setup.threads, 1);
  const size_t per_thread = setup.budget_bytes / static_cast<size_t>(threads);
  // Budget shares per thread: dense table 1/8, sparse buffers (keys, scratch, run) 1/32,
  // runs 3/8 (over it they spill); the exchange buffers and the partition use the rest.
  const size_t sparse = std::clamp<size_t>(per_thread / 32 / (3 * sizeof(uint64_t)), 4096, kSparseMaxEntries);
  // Note [Dense cells]: a cell takes up to 2 L per increment, which must stay below 2^32
  // (window <= 20); larger windows count everything through the sparse buffer.
  uint64_t unit = 1;
  for (int d = 1; d <= setup.window; ++d) unit = std::lcm(unit, static_cast<uint64_t>(d));
  const size_t dense_bytes = 2 * unit < (uint64_t{1} << 32) ? std::min(per_thread / 8, kDenseMaxBytes) : 0;
  const DenseLayout dense(setup.codec, setup.symmetric,
                          dense_product(setup.codec, setup.symmetric, dense_bytes / sizeof(uint32_t)));
  CountOutput out;
  Progress progress;
  std::vector<std::unique_ptr<PairCounter>> counters;
  for (int t = 0; t < threads; ++t) {
    out.stores.push_back(std::make_unique<RunStore>(setup.spill_dir, setup.tag + "-count" + std::to_string(t),
                                                    per_thread / 8 * 3, setup.bounds));
    counters.push_back(std::make_unique<PairCounter>(setup, sparse, dense, *out.stores.back(), progress));
  }
  std::vector<int64_t> tokens(static_cast<size_t>(threads), 0);
  run_threads(threads, progress, [&](int t) {
    tokens[static_cast<size_t>(t)] = count_shard(layout, corpus, vocab, rank * threads + t, world * threads,
                                                 static_cast<size_t>(setup.window), *counters[static_cast<size_t>(t)], progress);
  });
  for (int t = 0; t < threads; ++t) {
    const PairCounter& c = *counters[static_cast<size_t>(t)];
    out.tokens += tokens[static_cast<size_t>(t)];
    out.increments += c.increments();
    out.dense_increments += c.dense_increments();
  }
  out.unit = counters[0]->unit();
  out.dense_entries = dense.cells;
  std::vector<KV> run = dense_run(setup.codec, dense, counters);
  counters.clear();
  out.stores[0]->add(std::move(run));
  return out;
}

}  // namespace loom::cooccur
