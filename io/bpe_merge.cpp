#include "io/bpe_merge.h"

#include <algorithm>
#include <bit>

namespace loom {

BpeMergeTable::BpeMergeTable(std::span<const BpeMerge> merges) {
  size_t capacity = std::bit_ceil(std::max<size_t>(16, merges.size() * 2));
  entries_.assign(capacity, Entry{kEmpty, kNoRank, 0});
  mask_ = capacity - 1;
  shift_ = 64 - std::countr_zero(capacity);
  for (size_t r = 0; r < merges.size(); ++r) {
    const uint64_t key = (uint64_t{merges[r].left} << 32) | merges[r].right;
    size_t i = slot_of(key);
    while (entries_[i].key != kEmpty && entries_[i].key != key) i = (i + 1) & mask_;
    entries_[i] = Entry{key, static_cast<uint32_t>(r), merges[r].result};
  }
}

void BpeWordMerger::merge(const BpeMergeTable& table, std::vector<uint32_t>& ids,
                          size_t heap_from) {
  if (ids.size() < 2) return;
  if (ids.size() < heap_from)
    merge_short(table, ids);
  else
    merge_long(table, ids);
}

void BpeWordMerger::merge_short(const BpeMergeTable& table, std::vector<uint32_t>& ids) {
  size_t n = ids.size();
  ranks_.resize(n - 1);
  for (size_t i = 0; i + 1 < n; ++i) ranks_[i] = table.find(ids[i], ids[i + 1]).rank;
  while (n > 1) {
    size_t best = 0;   // the first minimum: lowest rank, leftmost
    for (size_t i = 1; i + 1 < n; ++i)
      if (ranks_[i] < ranks_[best]) best = i;
    if (ranks_[best] == BpeMergeTable::kNoRank) break;
    ids[best] = table.find(ids[best], ids[best + 1]).result;
    ids.erase(ids.begin() + static_cast<ptrdiff_t>(best) + 1);
    // n - 1 symbols have n - 2 pairs: drop the pair the right symbol started (or, when it
    // was the last symbol, the merged pair itself), then refresh the merged symbol's pairs.
    const size_t drop = best + 2 < n ? best + 1 : best;
    ranks_.erase(ranks_.begin() + static_cast<ptrdiff_t>(drop));
    --n;
    if (best > 0) ranks_[best - 1] = table.find(ids[best - 1], ids[best]).rank;
    if (best + 1 < n) ranks_[best] = table.find(ids[best], ids[best + 1]).rank;
  }
}

void BpeWordMerger::merge_long(const BpeMergeTable& table, std::vector<uint32_t>& ids) {
  const auto n = static_cast<int32_t>(ids.size());
  prev_.resize(n);
  next_.resize(n);
  heap_.clear();
  // std heap functions keep the largest on top: order by reversed (rank, pos).
  auto later = [](const Candidate& a, const Candidate& b) {
    return a.rank != b.rank ? a.rank > b.rank : a.pos > b.pos;
  };
  auto offer = [&](int32_t pos) {   // the pair (pos, next_[pos]) if it merges
    if (pos < 0 || next_[pos] < 0) return;
    uint32_t rank = table.find(ids[pos], ids[next_[pos]]).rank;
    if (rank == BpeMergeTable::kNoRank) return;
    heap_.push_back({rank, static_cast<uint32_t>(pos)});
    std::push_heap(heap_.begin(), heap_.end(), later);
  };
  for (int32_t i = 0; i < n; ++i) {
    prev_[i] = i - 1;
    next_[i] = i + 1 < n ? i + 1 : -1;
  }
  for (int32_t i = 0; i + 1 < n; ++i) offer(i);
  std::vector<uint8_t>& dead = dead_;   // (n) 1 once a symbol was merged into its left
  dead.assign(n, 0);
  while (!heap_.empty()) {
    std::pop_heap(heap_.begin(), heap_.end(), later);
    const Candidate c = heap_.back();
    heap_.pop_back();
    const auto pos = static_cast<int32_t>(c.pos);
    const int32_t right = next_[pos];
    if (dead[pos] || right < 0) continue;   // stale: the symbol was consumed or is last
    BpeMergeTable::Hit hit = table.find(ids[pos], ids[right]);
    if (hit.rank != c.rank) continue;       // stale: the pair at pos changed
    ids[pos] = hit.result;
    dead[right] = 1;
    next_[pos] = next_[right];
    if (next_[pos] >= 0) prev_[next_[pos]] = pos;
    offer(prev_[pos]);
    offer(pos);
  }
  size_t out = 0;
  for (int32_t i = 0; i >= 0; i = next_[i]) ids[out++] = ids[i];
  ids.resize(out);
}

}  // namespace loom
