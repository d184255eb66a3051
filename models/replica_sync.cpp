// delta_allreduce (replica_sync.h, Note [Fused delta sync]).
#include "models/replica_sync.h"

#include <omp.h>

#include <algorithm>

#include "core/error.h"
#include "core/tensor.h"
#include "dist/communicator.h"

namespace loom {

void delta_allreduce(Communicator& comm, float* x, float* base, int64_t n, int threads) {
  for (int64_t from = 0; from < n; from += kDeltaPiece) {
    const int64_t m = std::min(kDeltaPiece, n - from);
    float* __restrict xp = x + from;
    float* __restrict bp = base + from;
#pragma omp parallel for simd num_threads(threads) if (threads > 1)
    for (int64_t i = 0; i < m; ++i) xp[i] -= bp[i];
    comm.allreduce(Tensor::of(xp, m), ReduceOp::kSum);
#pragma omp parallel for simd num_threads(threads) if (threads > 1)
    for (int64_t i = 0; i < m; ++i) {
      xp[i] += bp[i];
      bp[i] = xp[i];
    }
  }
}

namespace {

// x (m,) <- reduced - others * base; base <- x. reduced may be x itself (same index read
// before it is written). others = 0 is a plain copy into base. Called per row by
// sum_allreduce_rows, so one thread runs without entering an OpenMP parallel region (a
// serial region per 100-float row cost as much as the rows' arithmetic).
void rebase_serial(float* x, const float* reduced, float* __restrict base, int64_t m, float others) {
#pragma omp simd
  for (int64_t i = 0; i < m; ++i) {
    x[i] = reduced[i] - others * base[i];
    base[i] = x[i];
  }
}

void rebase(float* x, const float* reduced, float* base, int64_t m, float others, int threads) {
  if (threads <= 1) return rebase_serial(x, reduced, base, m, others);
#pragma omp parallel num_threads(threads)
  {
    const int64_t t = omp_get_thread_num(), T = omp_get_num_threads();
    const int64_t b = m * t / T, e = m * (t + 1) / T;
    rebase_serial(x + b, reduced + b, base + b, e - b, others);
  }
}

// Allreduce x in place piece by piece (op), then rebase each piece while it is in cache.
void allreduce_rebase(Communicator& comm, float* x, float* base, int64_t n, int threads, ReduceOp op, float others) {
  for (int64_t from = 0; from < n; from += kDeltaPiece) {
    const int64_t m = std::min(kDeltaPiece, n - from);
    comm.allreduce(Tensor::of(x + from, m), op);
    rebase(x + from, x + from, base + from, m, others, threads);
  }
}

}  // namespace

void sum_allreduce(Communicator& comm, float* x, float* base, int64_t n, int threads) {
  allreduce_rebase(comm, x, base, n, threads, ReduceOp::kSum, static_cast<float>(comm.size() - 1));
}

void average_allreduce(Communicator& comm, float* x, float* base, int64_t n, int threads) {
  allreduce_rebase(comm, x, base, n, threads, ReduceOp::kAvg, 0.0f);
}

void sum_allreduce_rows(Communicator& comm, float* x, float* base, int64_t D, const std::vector<int32_t>& rows,
                        std::vector<float>& scratch) {
  const float others = static_cast<float>(comm.size() - 1);
  const size_t per = static_cast<size_t>(std::max<int64_t>(1, kDeltaPiece / D));   // rows per piece
  scratch.resize(per * static_cast<size_t>(D));
  for (size_t from = 0; from < rows.size(); from += per) {
    const size_t m = std::min(per, rows.size() - from);
    for (size_t q = 0; q < m; ++q)
      std::copy_n(x + static_cast<int64_t>(rows[from + q]) * D, D, scratch.data() + q * static_cast<size_t>(D));
    comm.allreduce(Tensor::of(scratch.data(), static_cast<int64_t>(m) * D), ReduceOp::kSum);
    for (size_t q = 0; q < m; ++q) {
      const int64_t row = static_cast<int64_t>(rows[from + q]) * D;
      rebase_serial(x + row, scratch.data() + q * static_cast<size_t>(D), base + row, D, others);
    }
  }
}

void split_by_owner(int64_t begin, int64_t end, std::vector<std::vector<ElementRange>>& by_rank) {
  const int64_t world = static_cast<int64_t>(by_rank.size());
  for (int64_t at = begin; at < end;) {
    const int64_t block = at / kOwnerBlock;
    const int64_t until = std::min(end, (block + 1) * kOwnerBlock);
    std::vector<ElementRange>& out = by_rank[static_cast<size_t>(block % world)];
    if (!out.empty() && out.back().offset + out.back().count == at) out.back().count += until - at;
    else out.push_back({at, until - at});
    at = until;
  }
}

void peer_sum_sync(Communicator& comm, const PeerMemory& peers, const std::vector<std::vector<ElementRange>>& by_rank,
                   PeerSumScratch& scratch) {
  constexpr int64_t kPiece = int64_t{1} << 16;   // floats per exchange (256 KiB, stays in L2)
  const int world = peers.size(), me = peers.rank();
  LOOM_ASSERT(static_cast<int>(by_rank.size()) == world, "peer_sum_sync: one list per rank");
  const std::vector<ElementRange>& mine = by_rank[static_cast<size_t>(me)];
  const float others = static_cast<float>(world - 1);
  float* x = static_cast<float*>(peers.region(0).base);
  float* base = static_cast<float*>(peers.region(1).base);
  constexpr int64_t kFloat = sizeof(float);
  scratch.values.resize(static_cast<size_t>((world - 1) * kPiece));   // a piece per peer
  auto slot = [&](int r) { return scratch.values.data() + (r < me ? r : r - 1) * kPiece; };
  std::vector<PeerMemory::Extent>& remote = scratch.extents;
  std::vector<PeerSumScratch::Part>& parts = scratch.parts;
  size_t next = 0;
  int64_t taken = 0;   // elements of mine[next] already done
  while (next < mine.size()) {
    remote.clear();
    parts.clear();
    int64_t filled = 0;
    while (next < mine.size() && filled < kPiece) {
      const int64_t n = std::min(kPiece - filled, mine[next].count - taken);
      const int64_t offset = mine[next].offset + taken;
      parts.push_back({offset, n, filled});
      remote.push_back({offset * kFloat, n * kFloat});
      filled += n;
      taken += n;
      if (taken == mine[next].count) ++next, taken = 0;
    }
    for (int r = 0; r < world; ++r)
      if (r != me) peers.read(r, 0, remote, slot(r));
    for (const PeerSumScratch::Part& p : parts) {
      float* __restrict xp = x + p.offset;
      float* __restrict bp = base + p.offset;
      if (world == 2) {
        const float* __restrict other = slot(1 - me) + p.at;
#pragma omp simd
        for (int64_t i = 0; i < p.count; ++i) {
          const float v = (xp[i] + other[i]) - bp[i];
          xp[i] = v;
          bp[i] = v;
        }
        continue;
      }
      for (int64_t i = 0; i < p.count; ++i) {
        float sum = me == 0 ? xp[i] : slot(0)[p.at + i];
        for (int r = 1; r < world; ++r) sum += r == me ? xp[i] : slot(r)[p.at + i];
        const float v = sum - others * bp[i];
        xp[i] = v;
        bp[i] = v;
      }
    }
  }
  comm.barrier();   // every owner's results are in its x and base
  for (int r = 0; r < world; ++r) {
    if (r == me) continue;
    remote.clear();
    for (const ElementRange& e : by_rank[static_cast<size_t>(r)]) remote.push_back({e.offset * kFloat, e.count * kFloat});
    peers.pull(r, 1, remote, 0);
  }
  comm.barrier();   // nobody reads this rank's memory any more
}

}  // namespace loom
