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
#include <cstdint>

namespace loom {

class Communicator;

constexpr int64_t kDeltaPiece = int64_t{1} << 18;   // floats per allreduce

// x (n,) <- base + sum over ranks (x_r - base); base (n,) <- x. Collective: every rank calls
// it with the same n. `threads` > 1 splits each piece's loops over that many OpenMP
// threads (as many as the rank trains with: a larger team would spin against the other
// ranks on the same cores).
void delta_allreduce(Communicator& comm, float* x, float* base, int64_t n, int threads);

// x (n,) <- mean over ranks of x_r; base (n,) <- x. Collective, pieces as above.
void average_allreduce(Communicator& comm, float* x, float* base, int64_t n, int threads);

}  // namespace loom
