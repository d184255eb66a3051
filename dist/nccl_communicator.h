#pragma once
// NcclCommunicator: collectives on CUDA device buffers (built only with CUDA; see
// dist/CMakeLists.txt). One per process, on the GPU this rank drives; comm_for() creates
// it on first use. Its ncclUniqueId is made on rank 0 and broadcast over the MPI world.
//
// Note [NCCL streams and events]
// Collectives run on the communicator's own CUDA stream, created NON-blocking, so that
// nothing queued on the compute stream (the calling thread's current loom stream of the
// device, Note [CUDA streams] in core/device.h: where the layer kernels and the optimizer
// run; by default the legacy default stream) waits for a collective: that is what lets
// GradSync's bucket allreduces overlap the rest of backward. Each collective is ordered after the
// work already queued on the compute stream by an event recorded there at the call (for a
// bucket, at mark_ready(): when backward has queued the kernels that produce it) and
// waited on by the NCCL stream; it never waits for compute queued later. Blocking calls
// then wait on the host for the collective; an async call returns a Work whose wait()
// does, so work queued on the compute stream after wait() sees the result (events come
// from a pool: none is created in a step after the first).
//
// Note [NCCL deadlines]
// The communicator is non-blocking (ncclConfig_t::blocking = 0): no NCCL call holds the
// host thread, so every wait is a poll of the CUDA event and ncclCommGetAsyncError under
// the deadline (CollectiveOptions::timeout, else the MPI world's default: comm.timeout_s).
// An op that misses it, or that NCCL reports failed (a peer that died, a network error),
// is aborted with ncclCommAbort, which stops its kernels, and the caller gets a
// TimeoutError (exit status 3) or CommError naming the op, its sequence number, the step
// and the rank. The communicator is then dead: every later call refuses with the name of
// the op that killed it. Which ranks are missing NCCL does not say (NCCL_DEBUG=INFO shows
// its view). The MPI world's Watchdog stays armed as a backstop, kBackstop beyond the
// deadline, in case the abort itself hangs.
//
// nccl.h and cuda_runtime.h are included only in nccl_communicator.cpp (pimpl).
#include <memory>
#include <string>

#include "dist/communicator.h"

namespace loom {

class MpiCommunicator;

class NcclCommunicator final : public Communicator {
 public:
  // Collective over `mpi` (every rank calls it, with its own device index).
  NcclCommunicator(MpiCommunicator& mpi, int device_index);
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  int rank() const override;
  int size() const override;
  std::string_view backend() const override { return "nccl"; }
  MpiCommHandle mpi_comm() const override;   // the MPI communicator it was built over
  void allreduce(Tensor buf, const CollectiveOptions& opt) override;
  std::unique_ptr<Work> allreduce_async(Tensor buf, const CollectiveOptions& opt) override;
  void broadcast(Tensor buf, int root) override;
  void allgatherv(Tensor mine, Tensor all, std::span<const int64_t> counts) override;
  void alltoallv(Tensor send, std::span<const int64_t> send_counts, Tensor recv,
                 std::span<const int64_t> recv_counts) override;
  void barrier() override;
  [[noreturn]] void abort(std::string_view why, int exit_code) override;
  using Communicator::allreduce;

  int device_index() const;
  // The cudaStream_t the collectives run on (Note [NCCL streams and events]), for kernels
  // that must be ordered with them and for tests.
  void* stream() const;
  // Whether a failed or late op aborted the communicator (Note [NCCL deadlines]).
  bool aborted() const;
  // "NCCL 2.28.3"
  static std::string library_version();

  struct Impl;   // public so the .cpp's Work handle can name it; defined only there

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace loom
