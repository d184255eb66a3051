#pragma once
// Test hooks of MpiCommunicator. Not for production code.
#include <cstdint>

namespace loom::detail {

// The largest element count MpiCommunicator passes to one MPI call (default INT_MAX, the
// most an MPI count can hold). Counts above it are split into pieces; tests make it tiny
// so the split path runs on small data. n <= 0 restores the default. Call it on every rank
// with the same value, between collectives.
void set_mpi_max_chunk_elements(int64_t n);
int64_t mpi_max_chunk_elements();

}  // namespace loom::detail
