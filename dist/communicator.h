#pragma once
// Communicator: every process is a rank of one. Two implementations, chosen by where the
// buffer lives (comm_for): MpiCommunicator for host memory, NcclCommunicator for CUDA
// memory (built with CUDA only). Every rank issues the same collectives in the same
// order (STYLE.md rule 10); every blocking collective runs under the Watchdog's deadline.
//
// Element counts are int64: counts above INT_MAX are split into pieces transparently.
// Buffers are Tensors (non-owning views); dtype and device come from the tensor.
#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "core/tensor.h"

namespace loom {

enum class ReduceOp { kSum, kAvg, kMax, kMin };
const char* reduce_op_name(ReduceOp op);

struct CollectiveOptions {
  ReduceOp op = ReduceOp::kSum;
  // Deadline for this collective; zero means the communicator's default (see Watchdog).
  std::chrono::milliseconds timeout{0};
  // The caller expects to wait long for another rank (rank 0 writing a checkpoint while
  // the others wait to hear whether it succeeded): wait by polling with short sleeps
  // instead of MPI's busy spin, so the waiting ranks leave their cores to the working one
  // (on 2 cores a spinning rank slowed a 1 GB checkpoint write by ~15 %). Adds up to
  // ~0.2 ms of latency; the deadline still applies. Backends without it ignore it.
  bool idle_wait = false;
};

// Handle of an asynchronous collective. wait() blocks (under the watchdog deadline) and
// rethrows a failure naming op, step and rank; done() polls without blocking.
class Work {
 public:
  virtual ~Work() = default;
  virtual void wait() = 0;
  virtual bool done() = 0;
};

// An MPI communicator as an opaque handle, so code that does MPI-IO on host files (HDF5's
// mpio driver, MPI_File_open) can run it over a Communicator's ranks without mpi.h in a
// header: `comm` points at an MPI_Comm that the Communicator owns and keeps valid while it
// lives. Read it with mpi_comm_of() from dist/mpi_handle.h (which includes mpi.h: .cpp
// files only). Empty (comm == nullptr) when there is none.
struct MpiCommHandle {
  const void* comm = nullptr;
  explicit operator bool() const { return comm != nullptr; }
};

class Communicator {
 public:
  virtual ~Communicator() = default;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  // "mpi" or "nccl": for logs and `loom env`, never for decisions (query what you need).
  virtual std::string_view backend() const = 0;
  // The MPI communicator over exactly these ranks, in this rank order: a collective on it
  // involves the same processes as one on this communicator, so MPI-IO on host files (a
  // parallel checkpoint write) may run over it. Empty when these ranks share none.
  virtual MpiCommHandle mpi_comm() const = 0;

  // In place: every rank ends with op(buf of all ranks). kAvg divides by size() (floating
  // dtypes only).
  virtual void allreduce(Tensor buf, const CollectiveOptions& opt) = 0;
  virtual std::unique_ptr<Work> allreduce_async(Tensor buf, const CollectiveOptions& opt) = 0;
  // buf on `root` is copied to every rank's buf.
  virtual void broadcast(Tensor buf, int root) = 0;
  // Rank r's `mine` (counts[r] elements) lands at offset sum(counts[0..r)) of `all`.
  virtual void allgatherv(Tensor mine, Tensor all, std::span<const int64_t> counts) = 0;
  // Rank r sends send[sum(send_counts[0..q)) .. +send_counts[q]) to rank q; receives
  // recv_counts[q] elements from rank q at offset sum(recv_counts[0..q)) of recv.
  virtual void alltoallv(Tensor send, std::span<const int64_t> send_counts, Tensor recv,
                         std::span<const int64_t> recv_counts) = 0;
  virtual void barrier() = 0;
  // Ends the whole job now: prints `why` with the rank prefix, then every rank exits with
  // `exit_code` (kExitError unless the caller knows better).
  [[noreturn]] virtual void abort(std::string_view why, int exit_code) = 0;

  // Equal counts on every rank: all has size() * mine.numel() elements.
  void allgather(Tensor mine, Tensor all);
  void allreduce(Tensor buf, ReduceOp op = ReduceOp::kSum) { allreduce(buf, CollectiveOptions{op, {}}); }

  // The training step, for error and watchdog messages ("allreduce #41 at step 17").
  void set_step(int64_t step) { step_ = step; }
  int64_t step() const { return step_; }

 protected:
  int64_t step_ = -1;   // -1: not in a step loop (setup, preprocessing)
};

// The communicator for buffers on `device`: the world MPI communicator for host memory,
// the NCCL communicator for CUDA memory. Logs its choice once.
Communicator& comm_for(Device device);

}  // namespace loom
