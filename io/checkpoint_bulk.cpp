// Bulk checkpoint data at known offsets: pwrite (gathered mode) or MPI-IO (parallel mode).
#include "io/checkpoint_bulk.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "core/error.h"
#include "dist/mpi_handle.h"
#include "io/checkpoint_stage.h"

namespace loom::ckpt {
namespace {

[[noreturn]] void throw_errno(const std::string& what, const std::string& path, int err) {
  throw IoError(what + " " + path + ": " + std::strerror(err) + " (errno " + std::to_string(err) + ")");
}

// The first error of an MPI call on `path` ("" when it succeeded).
std::string mpi_error(int code, const char* call, const std::string& path, uint64_t offset = UINT64_MAX) {
  if (code == MPI_SUCCESS) return "";
  char text[MPI_MAX_ERROR_STRING] = {};
  int len = 0;
  MPI_Error_string(code, text, &len);
  std::string where = offset == UINT64_MAX ? "" : " at offset " + std::to_string(offset);
  return std::string("MPI-IO ") + call + " failed on " + path + where + ": " + std::string(text, static_cast<size_t>(len));
}

}  // namespace

// Note [Streaming writeback]
// A plain write fills the page cache and the final fsync then writes it all back while
// the writer waits; the kernel's own writeback starts late. Asking for writeback of each
// 64 MiB piece as soon as it is in the cache (sync_file_range WRITE: asynchronous, no
// durability promise) keeps the disk busy while the next pieces are copied, so the fsync
// that follows (which is what makes the data durable) finds little left to do.
void write_pieces_posix(const std::string& path, const std::vector<BulkPiece>& pieces, Stager& stager) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) throw_errno("cannot open for writing", path, errno);
  int err = 0;
  uint64_t failed_at = 0;
  try {
    for (const BulkPiece& p : pieces) {
      const uint64_t limit = stager.piece(p.device, kBulkChunk);
      for (uint64_t done = 0; done < p.bytes && err == 0;) {
        const size_t n = static_cast<size_t>(std::min(p.bytes - done, limit));
        const void* src = stager.down(static_cast<const char*>(p.data) + done, p.device, n);
        ssize_t w = ::pwrite(fd, src, n, static_cast<off_t>(p.offset + done));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
          err = w < 0 ? errno : EIO, failed_at = p.offset + done;
        } else {
          // Start writing back what was just written (Note [Streaming writeback]).
          ::sync_file_range(fd, static_cast<off_t>(p.offset + done), w, SYNC_FILE_RANGE_WRITE);
          done += static_cast<uint64_t>(w);
        }
      }
      if (err != 0) break;
    }
  } catch (...) {   // a failed staging copy
    ::close(fd);
    throw;
  }
  if (err == 0 && ::fsync(fd) != 0) err = errno, failed_at = UINT64_MAX;
  ::close(fd);
  if (err == 0) return;
  if (failed_at == UINT64_MAX) throw_errno("fsync failed on", path, err);
  throw_errno("cannot write at offset " + std::to_string(failed_at) + " of", path, err);
}

namespace {

// This rank's pieces through an open MPI file; "" or the first error.
std::string write_at(MPI_File fh, const std::string& path, const std::vector<BulkPiece>& pieces, Stager& stager) {
  for (const BulkPiece& p : pieces) {
    const uint64_t limit = stager.piece(p.device, kBulkChunk);
    for (uint64_t done = 0; done < p.bytes;) {
      const int n = static_cast<int>(std::min(p.bytes - done, limit));
      const void* src = stager.down(static_cast<const char*>(p.data) + done, p.device, static_cast<uint64_t>(n));
      MPI_Status status;
      const uint64_t at = p.offset + done;
      std::string error = mpi_error(MPI_File_write_at(fh, static_cast<MPI_Offset>(at), src, n, MPI_BYTE, &status),
                                    "MPI_File_write_at", path, at);
      int written = 0;
      if (error.empty() && (MPI_Get_count(&status, MPI_BYTE, &written) != MPI_SUCCESS || written != n))
        error = "MPI-IO MPI_File_write_at on " + path + " at offset " + std::to_string(at) + " wrote " +
                std::to_string(written) + " of " + std::to_string(n) + " bytes";
      if (!error.empty()) return error;
      done += static_cast<uint64_t>(n);
    }
  }
  return "";
}

}  // namespace

std::string write_pieces_mpiio(const Communicator& comm, const std::string& path,
                               const std::vector<BulkPiece>& pieces, Stager& stager) {
  MPI_File fh = MPI_FILE_NULL;
  // Open is collective over comm's ranks and its outcome is the same on every rank (ROMIO
  // and OMPIO agree on it internally), so every rank either goes on to the collective sync
  // and close or not.
  std::string error = mpi_error(MPI_File_open(mpi_comm_of(comm.mpi_comm()), path.c_str(), MPI_MODE_WRONLY,
                                              MPI_INFO_NULL, &fh),
                                "MPI_File_open", path);
  if (fh == MPI_FILE_NULL) return error.empty() ? "MPI-IO MPI_File_open gave no file for " + path : error;
  error = mpi_error(MPI_File_set_errhandler(fh, MPI_ERRORS_RETURN), "MPI_File_set_errhandler", path);
  if (error.empty()) {
    try {
      error = write_at(fh, path, pieces, stager);
    } catch (const std::exception& e) {   // a failed staging copy: still sync and close with the others
      error = std::string("staging checkpoint data for ") + path + ": " + e.what();
    }
  }
  std::string sync = mpi_error(MPI_File_sync(fh), "MPI_File_sync", path);      // collective
  std::string close = mpi_error(MPI_File_close(&fh), "MPI_File_close", path);  // collective
  if (error.empty()) error = sync;
  if (error.empty()) error = close;
  return error;
}

}  // namespace loom::ckpt
