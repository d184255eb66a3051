#pragma once
// The "delta" synchronisation that GloVe and word2vec share: every rank keeps the
// parameters of the last sync (base) and, at the next one, adds the sum of every rank's
// change since then:  x <- base + sum over ranks (x_r - base);  base <- x.
//
// Note [Fused delta sync]
// Written as three passes (x -= base over the whole array, one allreduce, x += base and
// base = x), the sync streams the arrays through memory three times besides the
// allreduce's own copies: for word2vec at wiki17m's size (2 x 68,457 x 100 floats, 55 MB)
// that cost more than the allreduce. delta_allreduce() works through the arrays in pieces
// of kDeltaPiece floats (1 MiB, which stays in L2): subtract, allreduce the piece, add back
// and copy to base while the piece is still in cache. The pieces are reduced in the same
// order on every rank, one MPI call each, so the result does not depend on timing.
// Measured inside word2vec (wiki17m, 55 MB, 2 ranks x 1 thread, 2.0 GHz host): 75 ms per
// sync, 25 of them in MPI_Allreduce and the rest the two passes (pieces of 256 K or 1 M
// floats the same, 64 K slower); sum_allreduce, one pass: 56 ms; with only the touched
// rows of syn0 (sum_allreduce_rows): 45 ms, 35 ms once its per-row step ran outside OpenMP.
#include <cstdint>
#include <span>
#include <vector>

#include "dist/peer_memory.h"

namespace loom {

class Communicator;

constexpr int64_t kDeltaPiece = int64_t{1} << 18;   // floats per allreduce

// x (n,) <- base + sum over ranks (x_r - base); base (n,) <- x. Collective: every rank calls
// it with the same n. `threads` > 1 splits each piece's loops over that many OpenMP
// threads (as many as the rank trains with: a larger team would spin against the other
// ranks on the same cores).
void delta_allreduce(Communicator& comm, float* x, float* base, int64_t n, int threads);

// The same sum written as x <- sum over ranks x_r - (W - 1) base; base <- x (W ranks):
// the allreduce runs on x itself, so the pass that subtracts base before it is saved (on
// word2vec at wiki17m's size a sync took 56 ms instead of 75). The rounding differs: it
// is about one ulp of x per sync instead of half of one, and a row that only one rank
// changed is not reproduced exactly, which GloVe's stratified sync relies on (it uses
// delta_allreduce).
void sum_allreduce(Communicator& comm, float* x, float* base, int64_t n, int threads);

// sum_allreduce over the rows `rows` (the same list on every rank) of x and base (rows of
// D floats), packed into `scratch` a piece at a time; the other rows are left alone (for
// rows no rank changed, x_r = base everywhere already).
void sum_allreduce_rows(Communicator& comm, float* x, float* base, int64_t D, const std::vector<int32_t>& rows,
                        std::vector<float>& scratch);

// x (n,) <- mean over ranks of x_r; base (n,) <- x. Collective, pieces as above.
void average_allreduce(Communicator& comm, float* x, float* base, int64_t n, int threads);

// Note [Owner-computes sync]
// sum_allreduce without MPI when every rank's parameter buffer is a PeerMemory region
// (Note [Peer memory]): each element has one owner, the rank (i / kOwnerBlock) mod W for
// element i of the buffer. The owner reads the element from every rank, sums the copies in
// rank order and subtracts (W - 1) base - the formula of sum_allreduce, so at 2 ranks the
// bits are the same - and stores the result in its own x and base; after a barrier every
// rank copies the other owners' results from their base into its own x, and a second
// barrier ends the sync (no rank trains on while another still reads its memory). Every
// element is read once from each copy and written once to each copy: 8.7 ms per 55 MB at 2
// ranks against 23.5 ms through MPI_Allreduce (2.6 GHz host). Each rank writes only its own
// memory. Measured against the owner writing its results into the other ranks' x (one
// barrier fewer), CBOW 2 x 1 on wiki17m: syncs 0.60 s per rank there against 0.70 s here;
// the time outside the syncs 15.1 s against 15.0 s (means of four interleaved runs each,
// within the host's noise), and copying from the owner's x instead of its base 15.2 s. Blocks
// of 16 K floats alternate between the ranks, so the touched rows of syn0, which crowd at
// the frequent (low) rows, fall about evenly to all.
// base stays current only at the elements this rank owns; ownership never changes, and the
// MPI syncs above still update base everywhere, so the two kinds can share one buffer
// segment by segment.
constexpr int64_t kOwnerBlock = int64_t{1} << 14;   // floats

struct ElementRange {
  int64_t offset;   // first element
  int64_t count;
};

// Appends the parts of elements [begin, end) to their owners' lists, by_rank[r] for rank r
// of by_rank.size() (adjacent ranges are merged). Call with ascending, non-overlapping
// ranges.
void split_by_owner(int64_t begin, int64_t end, std::vector<std::vector<ElementRange>>& by_rank);

// Buffers peer_sum_sync reuses from one sync to the next (none is allocated in a step once
// they have grown).
struct PeerSumScratch {
  std::vector<float> values;                 // one piece per peer
  std::vector<PeerMemory::Extent> extents;   // a piece's, or a peer's share, in bytes
  struct Part { int64_t offset, count, at; };   // element range, position in the piece
  std::vector<Part> parts;
};

// x = peers' region 0 and base = region 1, as floats: for the elements of by_rank (from
// split_by_owner, the same on every rank) x <- sum over ranks x_r - (W - 1) base at every
// rank; base <- x at the elements this rank owns. The other ranks copy an owner's results
// from its base, which training does not touch, rather than from its x (whose lines would
// then be shared with their caches when the owner next writes them). Collective.
void peer_sum_sync(Communicator& comm, const PeerMemory& peers, const std::vector<std::vector<ElementRange>>& by_rank,
                   PeerSumScratch& scratch);

}  // namespace loom
