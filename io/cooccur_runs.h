#pragma once
// Sorted runs of (key, value) for the co-occurrence build (internal to io/cooccur*.cpp).
// A run is sorted by key with unique keys. Runs live in memory until the store's budget is
// exceeded; then the in-memory runs are merged into one run file in spill_dir.
//
// Note [Run merging]
// Counting produces many small runs (one per sparse-buffer flush). k-way merges (spill,
// exchange, final) pick the minimum with a binary heap, O(log k) per entry, and the store
// bounds k: past kMaxMemoryRuns in-memory runs it merges them into one, so an entry is
// copied about once per kMaxMemoryRuns flushes (merging pairwise on every add copied each
// entry log(n) times, each copy into freshly faulted pages). Sums are integers
// (Note [Exact sums] in io/cooccur.h), so merge order never changes a value.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/error.h"

namespace loom::cooccur {

struct KV {
  uint64_t key;
  uint64_t value;   // units of 1/L (Note [Exact sums] in io/cooccur.h)
};

[[noreturn]] void throw_value_overflow();

inline uint64_t add_value(uint64_t a, uint64_t b) {
  uint64_t s;
  if (__builtin_add_overflow(a, b, &s)) throw_value_overflow();
  return s;
}

// Reads one run's entries with keys in a segment, in order (memory or file).
class RunCursor {
 public:
  RunCursor(const KV* mem, uint64_t begin, uint64_t end);           // in memory
  RunCursor(const std::string& path, uint64_t begin, uint64_t end);  // entries of a file
  RunCursor(RunCursor&& other) noexcept;
  RunCursor(const RunCursor&) = delete;
  ~RunCursor();
  bool valid() const { return pos_ < end_; }
  const KV& peek() const { return mem_ ? mem_[pos_] : buf_[pos_ - buf_begin_]; }
  void advance();
  uint64_t remaining() const { return end_ - pos_; }

 private:
  void fill();
  const KV* mem_ = nullptr;
  int fd_ = -1;
  std::string path_;
  uint64_t pos_ = 0, end_ = 0;
  std::vector<KV> buf_;
  uint64_t buf_begin_ = 0;
};

// Merges cursors, summing equal keys (DataError on overflow); emit(key, value) in key order.
// Stops after `limit` entries; returns the number emitted. Note [Run merging].
template <typename Emit>
int64_t merge_runs(std::vector<RunCursor>& cursors, Emit&& emit, int64_t limit = INT64_MAX);

class RunStore {
 public:
  // bounds: ascending key boundaries of the destination segments (first 0, last 2^64-1).
  RunStore(std::string spill_dir, std::string tag, size_t budget_bytes, std::vector<uint64_t> bounds);
  ~RunStore();
  RunStore(const RunStore&) = delete;
  RunStore& operator=(const RunStore&) = delete;
  void add(std::vector<KV> run);   // Note [Run merging]
  // One cursor per run over segment `seg` (keys in [bounds[seg], bounds[seg+1])).
  std::vector<RunCursor> cursors(size_t seg) const;
  int64_t spills() const { return spills_; }
  size_t memory_bytes() const { return memory_; }
  uint64_t entries(size_t seg) const;   // of segment seg over all runs (>= its merged count)
  void clear();

 private:
  struct Run {
    std::vector<KV> mem;             // empty when spilled
    std::string path;                // set when spilled
    std::vector<uint64_t> seg_start; // entry index where each segment starts, + total
  };
  std::vector<uint64_t> segment_starts(const std::vector<KV>& run) const;
  void spill_memory_runs();
  size_t memory_runs() const;
  void merge_memory_runs();
  static constexpr size_t kMaxMemoryRuns = 16;
  std::string spill_dir_, tag_;
  size_t budget_;
  std::vector<uint64_t> bounds_;
  std::vector<Run> runs_;
  size_t memory_ = 0;
  int64_t spills_ = 0;
};

}  // namespace loom::cooccur

namespace loom::cooccur {

template <typename Emit>
int64_t merge_runs(std::vector<RunCursor>& cursors, Emit&& emit, int64_t limit) {
  struct Head {
    uint64_t key;     // cursors[index].peek().key
    uint32_t index;
  };
  std::vector<Head> heap;   // a min-heap on key over the valid cursors
  for (uint32_t i = 0; i < cursors.size(); ++i)
    if (cursors[i].valid()) heap.push_back({cursors[i].peek().key, i});
  auto sift_down = [&](size_t at) {
    const size_t n = heap.size();
    const Head moving = heap[at];
    for (;;) {
      size_t child = 2 * at + 1;
      if (child >= n) break;
      if (child + 1 < n && heap[child + 1].key < heap[child].key) ++child;
      if (heap[child].key >= moving.key) break;
      heap[at] = heap[child];
      at = child;
    }
    heap[at] = moving;
  };
  for (size_t i = heap.size(); i-- > 0;) sift_down(i);
  int64_t emitted = 0;
  if (heap.size() == 1) {   // one run: a copy
    RunCursor& c = cursors[heap[0].index];
    for (; emitted < limit && c.valid(); ++emitted, c.advance()) emit(c.peek().key, c.peek().value);
    return emitted;
  }
  while (emitted < limit && !heap.empty()) {
    const uint64_t key = heap[0].key;
    uint64_t sum = 0;
    do {   // runs have unique keys: each cursor holding `key` gives it once
      RunCursor& c = cursors[heap[0].index];
      sum = add_value(sum, c.peek().value);
      c.advance();
      if (c.valid()) {
        heap[0].key = c.peek().key;
      } else {
        heap[0] = heap.back();
        heap.pop_back();
      }
      if (!heap.empty()) sift_down(0);
    } while (!heap.empty() && heap[0].key == key);
    emit(key, sum);
    ++emitted;
  }
  return emitted;
}

}  // namespace loom::cooccur
