#pragma once
// Sorted runs of (key, value) for the co-occurrence build (internal to io/cooccur*.cpp).
// A run is sorted by key with unique keys. Runs live in memory until the store's budget is
// exceeded; then the in-memory runs are merged into one run file in spill_dir.
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
// Stops after `limit` entries; returns the number emitted.
template <typename Emit>
int64_t merge_runs(std::vector<RunCursor>& cursors, Emit&& emit, int64_t limit = INT64_MAX);

class RunStore {
 public:
  // bounds: ascending key boundaries of the destination segments (first 0, last 2^64-1).
  RunStore(std::string spill_dir, std::string tag, size_t budget_bytes, std::vector<uint64_t> bounds);
  ~RunStore();
  RunStore(const RunStore&) = delete;
  RunStore& operator=(const RunStore&) = delete;
  void add(std::vector<KV> run);
  // One cursor per run over segment `seg` (keys in [bounds[seg], bounds[seg+1])), from
  // entry `skip` of the merged segment onwards is the caller's business.
  std::vector<RunCursor> cursors(size_t seg) const;
  int64_t spills() const { return spills_; }
  size_t memory_bytes() const { return memory_; }
  void clear();

 private:
  struct Run {
    std::vector<KV> mem;             // empty when spilled
    std::string path;                // set when spilled
    std::vector<uint64_t> seg_start; // entry index where each segment starts, + total
  };
  std::vector<uint64_t> segment_starts(const std::vector<KV>& run) const;
  void spill_memory_runs();
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
  int64_t emitted = 0;
  while (emitted < limit) {
    // Linear minimum: run counts stay small (in-memory runs are merged when spilled).
    uint64_t best = UINT64_MAX;
    bool any = false;
    for (auto& c : cursors)
      if (c.valid() && (!any || c.peek().key < best)) { best = c.peek().key; any = true; }
    if (!any) return emitted;
    uint64_t sum = 0;
    for (auto& c : cursors) {
      while (c.valid() && c.peek().key == best) {
        if (__builtin_add_overflow(sum, c.peek().value, &sum))
          throw DataError("co-occurrence value overflows 64-bit fixed point; use a smaller "
                          "cooccur.window (the unit is 1/lcm(1..window))");
        c.advance();
      }
    }
    emit(best, sum);
    ++emitted;
  }
  return emitted;
}

}  // namespace loom::cooccur
