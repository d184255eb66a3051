#pragma once
// MpiCommHandle <-> MPI_Comm, for the .cpp files that run MPI calls (MPI-IO) over a
// Communicator's ranks (Communicator::mpi_comm()). It includes mpi.h: include it only from
// .cpp files (STYLE.md, header rule), never from a public header.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1  // C bindings only: no libmpi_cxx to link
#endif
#include <mpi.h>

#include "core/error.h"
#include "dist/communicator.h"

namespace loom {

// The MPI_Comm a non-empty handle points at.
inline MPI_Comm mpi_comm_of(MpiCommHandle handle) {
  LOOM_ASSERT(static_cast<bool>(handle), "mpi_comm_of: the handle is empty (no MPI communicator)");
  return *static_cast<const MPI_Comm*>(handle.comm);
}

// A handle to `comm`, which must outlive every use of the handle.
inline MpiCommHandle mpi_handle_to(const MPI_Comm& comm) { return MpiCommHandle{&comm}; }

}  // namespace loom
