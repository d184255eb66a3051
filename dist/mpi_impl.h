#pragma once
// Private to dist/: the state behind MpiCommunicator's pimpl, shared by
// mpi_communicator.cpp (set-up, shutdown) and mpi_collectives.cpp (the collectives).
// It includes mpi.h, so it is included only by those .cpp files, never by a public header.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1  // C bindings only: no libmpi_cxx to link
#endif
#include <mpi.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "dist/arrival_table.h"
#include "dist/mpi_communicator.h"
#include "dist/watchdog.h"

namespace loom {

struct MpiCommunicator::Impl {
  int rank = 0;
  int size = 1;
  int thread_level = MPI_THREAD_SINGLE;
  bool owns_mpi = false;                   // we called MPI_Init_thread, so we finalize
  MPI_Comm comm = MPI_COMM_NULL;           // the world duplicated, or a split, for loom's collectives
  int64_t seq = 0;                         // collectives issued on comm so far
  MPI_Comm error_comm = MPI_COMM_NULL;     // the world's own, for end_together only
  std::unique_ptr<ArrivalTable> arrivals;  // null for a singleton, a split or without THREAD_MULTIPLE
  std::unique_ptr<Watchdog> watchdog;
  std::vector<std::string> hosts;          // (size) MPI_Get_processor_name of every rank

  // Numbers the next collective (every rank numbers them alike).
  OpInfo next_op(int64_t step, const char* op, const char* reduce, const Tensor& t);
  // Arms the collective's deadline, then records this rank's arrival in the table.
  Watchdog::Guard enter(const OpInfo& info, std::chrono::milliseconds timeout);
};

}  // namespace loom
