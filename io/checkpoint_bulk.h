#pragma once
// Internal to io/checkpoint_*.cpp: writing checkpoint data at known file offsets, after the
// HDF5 layout is closed (Note [Layout, then bulk data] in checkpoint_write.cpp). Data in
// device memory goes through the Stager (Note [Staging device data]). mpi.h stays in
// checkpoint_bulk.cpp.
#include <cstdint>
#include <string>
#include <vector>

#include "core/device.h"

namespace loom {
class Communicator;
}

namespace loom::ckpt {

class Stager;

// `bytes` bytes at `data` (memory on `device`) go to file offset `offset`.
struct BulkPiece {
  uint64_t offset = 0;
  const void* data = nullptr;
  uint64_t bytes = 0;
  Device device = Device::cpu();
};

// Serial (one process): pwrite every piece (in pieces of at most kBulkChunk bytes, or the
// stager's chunk for staged data), then fsync. Throws IoError naming `path`, the offset
// and the OS error (or the staging copy's error).
void write_pieces_posix(const std::string& path, const std::vector<BulkPiece>& pieces, Stager& stager);

// Collective over comm's ranks (MPI-IO on comm.mpi_comm(), which must not be empty):
// MPI_File_open(path, WRONLY), MPI_File_write_at of this rank's pieces, MPI_File_sync,
// MPI_File_close. Every rank makes every collective call even after its own write failed.
// Returns "" or this rank's first error (naming `path`, the MPI call and MPI's error text,
// or the staging copy's error); the caller agrees on failure across ranks.
std::string write_pieces_mpiio(const Communicator& comm, const std::string& path,
                               const std::vector<BulkPiece>& pieces, Stager& stager);

inline constexpr uint64_t kBulkChunk = uint64_t{64} << 20;   // bytes per write call

}  // namespace loom::ckpt
