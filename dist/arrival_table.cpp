#include "dist/arrival_table.h"

#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1  // C bindings only: no libmpi_cxx to link
#endif
#include <mpi.h>

#include <algorithm>

#include "core/error.h"
#include "dist/mpi_check.h"

namespace loom {

struct ArrivalTable::Impl {
  int rank = 0;
  int size = 1;
  MPI_Comm comm = MPI_COMM_NULL;   // duplicated from the world, used by the table only
  MPI_Win window = MPI_WIN_NULL;   // on rank 0: int64[size]; elsewhere: empty
  int64_t* entries = nullptr;      // (size) on rank 0
  bool open = false;
};

ArrivalTable::ArrivalTable(int rank, int size) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.rank = rank;
  s.size = size;
  LOOM_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &s.comm));
  LOOM_MPI_CHECK(MPI_Comm_set_errhandler(s.comm, MPI_ERRORS_RETURN));
  MPI_Aint bytes = rank == 0 ? static_cast<MPI_Aint>(sizeof(int64_t)) * size : 0;
  LOOM_MPI_CHECK(MPI_Win_allocate(bytes, sizeof(int64_t), MPI_INFO_NULL, s.comm, &s.entries,
                                  &s.window));
  LOOM_MPI_CHECK(MPI_Win_set_errhandler(s.window, MPI_ERRORS_RETURN));
  // One passive-target epoch for the table's whole life: record() and read() only flush.
  LOOM_MPI_CHECK(MPI_Win_lock_all(MPI_MODE_NOCHECK, s.window));
  if (rank == 0) {
    std::fill(s.entries, s.entries + size, int64_t{0});
    LOOM_MPI_CHECK(MPI_Win_sync(s.window));
  }
  s.open = true;
  LOOM_MPI_CHECK(MPI_Barrier(s.comm));  // nobody writes before rank 0 has zeroed it
}

ArrivalTable::~ArrivalTable() = default;

void ArrivalTable::record(int64_t seq) {
  Impl& s = *impl_;
  LOOM_MPI_CHECK(MPI_Accumulate(&seq, 1, MPI_INT64_T, 0, s.rank, 1, MPI_INT64_T, MPI_REPLACE,
                                s.window));
  LOOM_MPI_CHECK(MPI_Win_flush(0, s.window));
}

std::vector<int64_t> ArrivalTable::read() {
  Impl& s = *impl_;
  std::vector<int64_t> seqs(static_cast<size_t>(s.size), 0);  // (size)
  LOOM_MPI_CHECK(MPI_Get_accumulate(nullptr, 0, MPI_INT64_T, seqs.data(), s.size, MPI_INT64_T,
                                    0, 0, s.size, MPI_INT64_T, MPI_NO_OP, s.window));
  LOOM_MPI_CHECK(MPI_Win_flush(0, s.window));
  return seqs;
}

std::string ArrivalTable::explain(int64_t seq) {
  std::vector<int64_t> seqs = read();
  std::string missing;
  int count = 0;
  for (int r = 0; r < impl_->size; ++r) {
    int64_t last = seqs[static_cast<size_t>(r)];
    if (last >= seq) continue;
    if (count++ > 0) missing += ", ";
    missing += std::to_string(r);
    missing += " (last entered ";
    if (last > 0) {
      missing += '#';
      missing += std::to_string(last);
    } else {
      missing += "none";
    }
    missing += ")";
  }
  if (count == 0)
    return "every rank entered it, so it is stuck inside MPI (a rank stopped or died after "
           "entering, or the network failed)";
  return std::string(count == 1 ? "rank " : "ranks ") + missing + " did not arrive";
}

void ArrivalTable::free() {
  Impl& s = *impl_;
  if (!s.open) return;
  s.open = false;
  LOOM_MPI_CHECK(MPI_Win_unlock_all(s.window));
  LOOM_MPI_CHECK(MPI_Win_free(&s.window));
  LOOM_MPI_CHECK(MPI_Comm_free(&s.comm));
}

}  // namespace loom
