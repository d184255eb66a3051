#pragma once
// NcclCommunicator: collectives on CUDA device buffers (built only with CUDA; see
// dist/CMakeLists.txt). One per process, on the GPU this rank drives; comm_for() creates
// it on first use. Its ncclUniqueId is made on rank 0 and broadcast over the MPI world.
//
// Ordering: collectives run on the communicator's own CUDA stream, created blocking, so
// they start after work already queued on the legacy default stream. Blocking calls wait
// for the stream under the MPI world's Watchdog deadline; async calls record an event
// that Work::wait() synchronises on (also under the deadline). NCCL counts are size_t:
// no splitting is needed. bf16/f16 reduce natively on the GPU.
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
  // "NCCL 2.28.3"
  static std::string library_version();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace loom
