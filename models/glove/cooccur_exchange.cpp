// The co-occurrence exchange: rounds of alltoallv over agreed key ranges, so that what an
// owner receives in a round is final and goes straight into its partition.
//
// Note [Exchange rounds]
// Each rank keeps, per owner q, a pending buffer of its merged entries for q (at most cap).
// A round tops the buffers up from the runs, then the ranks agree per owner on a bound: the
// smallest over ranks of the first key that did not fit in a rank's buffer (INT64_MAX once a
// rank's runs for q are used up; keys are below 2^63). Every rank sends q its pending
// entries below the bound. They are all of its entries below the bound, since the rest of
// its stream lies above, so q's round covers the key range [previous bound, bound)
// completely: the W-way merge of the round is final. The rank that set the bound sends a
// full buffer, so every round moves at least cap entries or ends the exchange, and every
// rank sends at most cap entries to each owner per round. Every rank takes part in every
// round until all bounds are INT64_MAX.
#include <algorithm>
#include <cstdint>
#include <functional>
#include <memory>

#include "core/tensor.h"
#include "dist/communicator.h"
#include "io/cooccur_runs.h"

namespace loom::cooccur_detail {
using cooccur::KV;
using cooccur::RunCursor;
using cooccur::RunStore;

namespace {

// Merged entries of one owner not sent yet: buf[head, tail), ascending keys.
struct Pending {
  std::unique_ptr<KV[]> buf;   // (cap) uninitialised: pages are touched only when used
  size_t cap = 0, head = 0, tail = 0;
  std::vector<RunCursor> cursors;

  // Refills to cap entries; returns the first key left in the runs, or INT64_MAX.
  int64_t top_up() {
    std::copy(buf.get() + head, buf.get() + tail, buf.get());
    tail -= head;
    head = 0;
    cooccur::merge_runs(cursors, [&](uint64_t k, uint64_t v) { buf[tail++] = {k, v}; },
                        static_cast<int64_t>(cap - tail));
    uint64_t next = INT64_MAX;
    for (const RunCursor& c : cursors)
      if (c.valid()) next = std::min(next, c.peek().key);
    return static_cast<int64_t>(next);
  }
};

// Merges the W sorted sequences of one round (the others' from recv, this rank's own
// entries in place: own[0, own_n)); emit(key, value) in key order.
void absorb(const std::vector<KV>& recv, const std::vector<int64_t>& counts, const KV* own, size_t own_n,
            const std::function<void(uint64_t, uint64_t)>& emit) {
  std::vector<RunCursor> cs;
  if (own_n) cs.emplace_back(own, 0, own_n);
  uint64_t at = 0;
  for (int64_t c : counts) {
    uint64_t entries = static_cast<uint64_t>(c) / 2;
    if (entries) cs.emplace_back(recv.data(), at, at + entries);
    at += entries;
  }
  cooccur::merge_runs(cs, emit);
}

}  // namespace

int64_t exchange(Communicator& comm, const std::vector<const RunStore*>& sent, size_t cap,
                 const std::function<void(uint64_t, uint64_t)>& emit) {
  const size_t world = static_cast<size_t>(comm.size());
  const size_t me = static_cast<size_t>(comm.rank());
  std::vector<Pending> pending(world);
  for (size_t q = 0; q < world; ++q) {
    pending[q].buf = std::make_unique_for_overwrite<KV[]>(cap);
    pending[q].cap = cap;
    for (const RunStore* store : sent)
      for (RunCursor& c : store->cursors(q)) pending[q].cursors.push_back(std::move(c));
  }
  std::unique_ptr<KV[]> send = std::make_unique_for_overwrite<KV[]>(world * cap);
  std::vector<KV> recv;
  std::vector<int64_t> bound(world), send_counts(world), recv_counts(world), matrix(world * world);
  for (int64_t rounds = 1;; ++rounds) {
    for (size_t q = 0; q < world; ++q) bound[q] = pending[q].top_up();
    comm.allreduce(Tensor::of(bound.data(), static_cast<int64_t>(world)), ReduceOp::kMin);
    size_t at = 0, own_n = 0;
    const KV* own = nullptr;   // this rank's entries for itself stay where they are
    for (size_t q = 0; q < world; ++q) {
      Pending& p = pending[q];
      const KV* first = p.buf.get() + p.head;
      const KV* last = std::lower_bound(first, static_cast<const KV*>(p.buf.get() + p.tail),
                                        static_cast<uint64_t>(bound[q]), [](const KV& kv, uint64_t k) { return kv.key < k; });
      size_t n = static_cast<size_t>(last - first);
      p.head += n;
      if (q == me) {
        own = first;
        own_n = n;
        n = 0;
      }
      std::copy(first, first + n, send.get() + at);
      at += n;
      send_counts[q] = static_cast<int64_t>(2 * n);   // in uint64 words
    }
    comm.allgather(Tensor::of(send_counts.data(), static_cast<int64_t>(world)),
                   Tensor::of(matrix.data(), static_cast<int64_t>(world * world)));
    int64_t total = 0;
    for (size_t q = 0; q < world; ++q) {
      recv_counts[q] = matrix[q * world + me];
      total += recv_counts[q];
    }
    recv.resize(static_cast<size_t>(total / 2));
    comm.alltoallv(Tensor::of(reinterpret_cast<uint64_t*>(send.get()), static_cast<int64_t>(2 * at)), send_counts,
                   Tensor::of(reinterpret_cast<uint64_t*>(recv.data()), total), recv_counts);
    absorb(recv, recv_counts, own, own_n, emit);
    if (std::all_of(bound.begin(), bound.end(), [](int64_t b) { return b == INT64_MAX; })) return rounds;
  }
}

}  // namespace loom::cooccur_detail
