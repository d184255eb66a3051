// The co-occurrence exchange: rounds of alltoallv in which every rank sends each owner the
// next `cap` merged entries of that owner's key segment. Every rank takes part in every
// round (possibly sending nothing) until no rank has anything left.
#include <algorithm>

#include "core/tensor.h"
#include "dist/communicator.h"
#include "io/cooccur_runs.h"

namespace loom::cooccur_detail {
using cooccur::KV;
using cooccur::RunCursor;
using cooccur::RunStore;

namespace {

// Merges the W sorted sequences of one round into one run of the receiving store.
void absorb(const std::vector<uint64_t>& recv, const std::vector<int64_t>& counts, RunStore& received) {
  std::vector<RunCursor> cs;
  const KV* base = reinterpret_cast<const KV*>(recv.data());
  uint64_t at = 0;
  for (int64_t c : counts) {
    uint64_t entries = static_cast<uint64_t>(c) / 2;
    if (entries) cs.emplace_back(base, at, at + entries);
    at += entries;
  }
  std::vector<KV> run;
  cooccur::merge_runs(cs, [&](uint64_t k, uint64_t v) { run.push_back({k, v}); });
  received.add(std::move(run));
}

}  // namespace

int64_t exchange(Communicator& comm, RunStore& sent, RunStore& received, size_t cap) {
  const size_t world = static_cast<size_t>(comm.size());
  std::vector<std::vector<RunCursor>> cursors(world);
  for (size_t q = 0; q < world; ++q) cursors[q] = sent.cursors(q);
  std::vector<uint64_t> send(world * cap * 2), recv;
  std::vector<int64_t> send_counts(world), recv_counts(world), matrix(world * world);
  int64_t rounds = 0;
  for (;;) {
    size_t at = 0;
    int64_t more = 0;
    for (size_t q = 0; q < world; ++q) {
      KV* out = reinterpret_cast<KV*>(send.data() + at);
      int64_t n = cooccur::merge_runs(cursors[q], [&](uint64_t k, uint64_t v) { *out++ = {k, v}; },
                                      static_cast<int64_t>(cap));
      send_counts[q] = 2 * n;
      at += static_cast<size_t>(2 * n);
      for (auto& c : cursors[q]) more |= c.valid() ? 1 : 0;
    }
    comm.allgather(Tensor::of(send_counts.data(), static_cast<int64_t>(world)),
                   Tensor::of(matrix.data(), static_cast<int64_t>(world * world)));
    int64_t total = 0;
    for (size_t q = 0; q < world; ++q) {
      recv_counts[q] = matrix[q * world + static_cast<size_t>(comm.rank())];
      total += recv_counts[q];
    }
    recv.resize(static_cast<size_t>(total));
    comm.alltoallv(Tensor::of(send.data(), static_cast<int64_t>(at)), send_counts,
                   Tensor::of(recv.data(), total), recv_counts);
    absorb(recv, recv_counts, received);
    ++rounds;
    comm.allreduce(Tensor::of(&more, 1), ReduceOp::kMax);
    if (more == 0) return rounds;
  }
}

}  // namespace loom::cooccur_detail
