// build_cooccurrence: count (models/glove/cooccur_count.cpp), exchange (alltoallv rounds straight
// into the partition), shuffle, write (behind the shuffle when threads > 1).
#include "models/glove/cooccur_build.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <exception>
#include <functional>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "core/measure.h"
#include "core/rng.h"
#include "core/tensor.h"
#include "dist/communicator.h"
#include "models/glove/cooccur_count.h"
#include "io/cooccur_runs.h"
#include "io/cooccur_write.h"

namespace loom {
namespace {
using cooccur::RunStore;

constexpr int kMaxWindow = 40;
constexpr int kMaxThreads = 256;

using Clock = SteadyClock;
double since(Clock::time_point t) { return seconds_since(t); }

// Rng::below(n) with the same draws and results (Lemire's multiply-and-reject), but the
// rejection threshold, a 64-bit division, is computed only when it can matter.
uint64_t below(Rng& rng, uint64_t n) {
  __extension__ using U128 = unsigned __int128;
  U128 m = static_cast<U128>(rng.next_u64()) * n;
  if (static_cast<uint64_t>(m) < n) {
    uint64_t threshold = (0 - n) % n;
    while (static_cast<uint64_t>(m) < threshold) m = static_cast<U128>(rng.next_u64()) * n;
  }
  return static_cast<uint64_t>(m >> 64);
}

// Fisher-Yates with Rng(seed, rank, kShuffle): the same swaps as the plain loop
// (for i = n..2: swap(e[i-1], e[below(i)])), with the draws made kAhead steps early so
// the random entry can be prefetched. publish(lo) says [lo, n) is final (Note [Write behind
// the shuffle] in io/cooccur_write.h); the last call is publish(0).
template <typename Publish>
void shuffle(std::vector<CooccurEntry>& entries, Rng& rng, Publish&& publish) {
  constexpr size_t kAhead = 16;
  constexpr size_t kPublishEvery = size_t{1} << 20;
  size_t n = entries.size();
  if (n < 2) {
    publish(0);
    return;
  }
  size_t ring[kAhead];
  size_t drawn = n;   // the next i whose draw is still to make
  auto draw = [&] {
    size_t j = below(rng, drawn);
    __builtin_prefetch(&entries[j], 1);
    ring[drawn % kAhead] = j;
    --drawn;
  };
  while (drawn > 1 && n - drawn < kAhead) draw();
  for (size_t i = n; i > 1; --i) {
    size_t j = ring[i % kAhead];
    if (drawn > 1) draw();
    std::swap(entries[i - 1], entries[j]);
    if ((i & (kPublishEvery - 1)) == 0) publish(i - 1);
  }
  publish(0);
}

// Shuffles the partition and, when out_dir is set, writes it: behind the shuffle on a
// second thread when the rank has counting threads to spare (Note [Write behind the
// shuffle] in io/cooccur_write.h), else after it. Sets the two phase times.
void shuffle_and_write(CooccurResult& result, const Vocab& vocab, const CooccurOptions& options, Rng& rng) {
  auto t0 = Clock::now();
  if (result.h5_path.empty() || options.threads < 2) {
    shuffle(result.entries, rng, [](size_t) {});
    result.stats.shuffle_seconds = since(t0);
    if (!result.h5_path.empty()) write_cooccur_h5(result.h5_path, result, vocab, options);
    result.stats.write_seconds = since(t0) - result.stats.shuffle_seconds;
    return;
  }
  std::mutex mu;
  std::condition_variable cv;
  size_t final_from = result.entries.size();
  std::exception_ptr error;
  std::thread writer([&] {
    try {
      cooccur::write_cooccur_h5_behind(result.h5_path, result, vocab, options, [&](size_t hi) {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return final_from < hi; });
        return final_from;
      });
    } catch (...) {
      error = std::current_exception();
    }
  });
  shuffle(result.entries, rng, [&](size_t lo) {
    { std::lock_guard lock(mu); final_from = lo; }
    cv.notify_one();
  });
  result.stats.shuffle_seconds = since(t0);
  writer.join();
  result.stats.write_seconds = since(t0) - result.stats.shuffle_seconds;   // what the shuffle did not hide
  if (error) std::rethrow_exception(error);
}

// cooccur.window's range is the [cooccur] schema's (checked by the config loader); options
// built directly outside it break an invariant. The threads come from run.threads (0 =
// every core of the rank), which has no upper bound of its own.
void check_options(const CooccurOptions& options) {
  LOOM_ASSERT(options.window >= 1 && options.window <= kMaxWindow && options.threads >= 1,
              "CooccurOptions outside the ranges of the [cooccur] schema");
  LOOM_CHECK(options.threads <= kMaxThreads, ConfigError,
             "run.threads: counting co-occurrences takes at most " + std::to_string(kMaxThreads) +
                 " threads per rank, got " + std::to_string(options.threads) +
                 " (run.threads = 0 takes every core of the rank; set run.threads to at most " +
                 std::to_string(kMaxThreads) + ")");
}

}  // namespace

namespace cooccur_detail {
// Note [Exchange rounds] in models/glove/cooccur_exchange.cpp; emit gets this rank's partition in key order.
int64_t exchange(Communicator& comm, const std::vector<const RunStore*>& sent, size_t cap,
                 const std::function<void(uint64_t, uint64_t)>& emit);
}

CooccurResult build_cooccurrence(Communicator& comm, const Vocab& vocab, const CorpusLayout& layout,
                                 const CorpusOptions& corpus, const CooccurOptions& options,
                                 const std::string& out_dir) {
  check_options(options);
  auto t0 = Clock::now();
  const uint64_t world = static_cast<uint64_t>(comm.size());
  const uint64_t vsize = static_cast<uint64_t>(std::max(vocab.size(), 1));
  cooccur::CountSetup setup;
  setup.codec = {vsize, world, (vsize + world - 1) / world};
  for (uint64_t q = 0; q < world; ++q) setup.bounds.push_back(q * setup.codec.owner_span());
  setup.bounds.push_back(UINT64_MAX);
  setup.window = options.window;
  setup.symmetric = options.symmetric;
  setup.threads = options.threads;
  setup.budget_bytes = static_cast<size_t>(std::max(options.memory_gb, 1e-6) * double(1ull << 30));
  setup.spill_dir = options.spill_dir.empty() ? (out_dir.empty() ? "." : out_dir) : options.spill_dir;
  setup.tag = "cooccur-r" + std::to_string(comm.rank());
  CooccurResult result;
  CooccurStats& st = result.stats;
  int64_t stats[4] = {0, 0, 0, 0};   // tokens, increments, spills, nnz
  cooccur::CountOutput counted = cooccur::count_pairs(layout, corpus, vocab, comm.rank(), comm.size(), setup);
  stats[0] = counted.tokens;
  stats[1] = counted.increments;
  st.count_seconds = since(t0);
  log::info("cooccur", "counted " + fixed(static_cast<double>(counted.increments) / 1e6, 1) +
                           " M increments on rank 0 in " + fixed(st.count_seconds, 2) + " s (" +
                           fixed(100.0 * static_cast<double>(counted.dense_increments) /
                                     static_cast<double>(std::max<int64_t>(counted.increments, 1)), 1) +
                           "% in the dense block of " + fixed(static_cast<double>(counted.dense_entries) / 1e6, 1) +
                           " M cells), RSS " + fixed(static_cast<double>(cooccur::current_rss_bytes()) / double(1ull << 30), 2) + " GB");

  auto t1 = Clock::now();
  result.partition = comm.rank();
  result.num_partitions = comm.size();
  std::vector<const RunStore*> sent;
  std::vector<int64_t> upper(world, 0);   // entries per owner before merging: >= the partition
  for (auto& s : counted.stores) {
    sent.push_back(s.get());
    for (uint64_t q = 0; q < world; ++q) upper[q] += static_cast<int64_t>(s->entries(q));
  }
  comm.allreduce(Tensor::of(upper.data(), static_cast<int64_t>(world)), ReduceOp::kSum);
  result.entries.reserve(static_cast<size_t>(upper[static_cast<size_t>(comm.rank())]));   // untouched pages cost nothing
  // Entries per destination and round: at most 1 M (16 MiB buffers that stay warm in cache
  // and are faulted in once; a round's collectives cost far less than its copies) and at
  // most 1/64 of the budget per buffer.
  size_t cap = std::clamp<size_t>(setup.budget_bytes / (64 * sizeof(cooccur::KV) * world), 64, size_t{1} << 20);
  const cooccur::KeyCodec& codec = setup.codec;
  const double unit = static_cast<double>(counted.unit);
  uint64_t row_key = 1, row_end = 0;   // keys of the current row: [row_key, row_end)
  int32_t row = 0;
  int64_t rounds = cooccur_detail::exchange(comm, sent, cap, [&](uint64_t key, uint64_t value) {
    if (key >= row_end || key < row_key) {   // keys ascend: decode (two divisions) once per row
      int32_t col;
      codec.decode(key, row, col);
      row_key = key - static_cast<uint64_t>(col);
      row_end = row_key + codec.vocab;
    }
    result.entries.push_back({row, static_cast<int32_t>(key - row_key), static_cast<double>(value) / unit});
  });
  for (auto& s : counted.stores) stats[2] += s->spills();
  counted.stores.clear();
  st.exchange_seconds = since(t1);

  stats[3] = static_cast<int64_t>(result.entries.size());
  comm.allreduce(Tensor::of(stats, 4), ReduceOp::kSum);
  st.tokens = stats[0];
  st.increments = stats[1];
  st.spills = stats[2];
  st.nnz = stats[3];
  if (!out_dir.empty())
    result.h5_path = out_dir + "/cooccur.part-" + std::to_string(comm.rank()) + "-of-" +
                     std::to_string(comm.size()) + ".h5";
  Rng rng(options.seed, static_cast<uint64_t>(comm.rank()), RngPurpose::kShuffle);
  shuffle_and_write(result, vocab, options, rng);
  st.seconds = since(t0);
  st.peak_rss_gb = peak_rss_gb();
  log::info("cooccur", std::to_string(st.tokens) + " tokens, " + std::to_string(st.nnz) + " non-zeros, " +
                           std::to_string(st.spills) + " spills, " + std::to_string(rounds) + " exchange rounds, " +
                           fixed(st.seconds, 2) + " s (count " + fixed(st.count_seconds, 2) + ", exchange " +
                           fixed(st.exchange_seconds, 2) + ", shuffle " +
                           fixed(st.shuffle_seconds, 2) + ", write " + fixed(st.write_seconds, 2) + "), " +
                           fixed(static_cast<double>(st.tokens) / st.seconds / 1e6, 2) +
                           " M tokens/s, peak RSS rank 0 " + fixed(st.peak_rss_gb, 2) + " GB");
  return result;
}

CooccurResult build_cooccurrence(Communicator& comm, const Vocab& vocab, const CorpusOptions& corpus,
                                 const CooccurOptions& options, const std::string& out_dir) {
  CorpusLayout layout = CorpusLayout::scan(comm, corpus);
  return build_cooccurrence(comm, vocab, layout, corpus, options, out_dir);
}

}  // namespace loom
