#pragma once
// MpiCommunicator: a communicator over MPI, for host buffers: the world (init_world), or a
// group of its ranks (split). Started without a
// launcher, the process is a singleton of size 1 (no mpirun needed). Started by a launcher
// that announces N > 1 ranks while MPI reports 1 (an srun without PMIx, say), init_world
// throws a CommError that says how to launch correctly.
//
// mpi.h is included only in mpi_communicator.cpp: state lives behind a pimpl.
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "dist/communicator.h"

namespace loom {

class Watchdog;

class MpiCommunicator final : public Communicator {
 public:
  // Initialises MPI once (thread level MULTIPLE, so the watchdog thread may act while a
  // collective blocks), checks the launcher's announced size, sets the log rank prefix.
  static MpiCommunicator& init_world(int* argc = nullptr, char*** argv = nullptr);
  static MpiCommunicator& world();        // after init_world (asserts)
  static bool world_initialized();
  static void shutdown_world();           // MPI_Finalize; idempotent; safe without init

  ~MpiCommunicator() override;

  int rank() const override;
  int size() const override;
  std::string_view backend() const override { return "mpi"; }
  MpiCommHandle mpi_comm() const override;   // the duplicate loom's collectives run on
  void allreduce(Tensor buf, const CollectiveOptions& opt) override;
  std::unique_ptr<Work> allreduce_async(Tensor buf, const CollectiveOptions& opt) override;
  void broadcast(Tensor buf, int root) override;
  void allgatherv(Tensor mine, Tensor all, std::span<const int64_t> counts) override;
  void alltoallv(Tensor send, std::span<const int64_t> send_counts, Tensor recv,
                 std::span<const int64_t> recv_counts) override;
  void barrier() override;
  [[noreturn]] void abort(std::string_view why, int exit_code) override;
  using Communicator::allreduce;

  // Note [An error every rank reaches]
  // A config value checked after MPI is up, an input every rank reads, a damaged checkpoint:
  // every rank hits the same error, and each used to print it and MPI_Abort the job, so the
  // text came twice with Open MPI's "MPI_ABORT was invoked on rank ..." banner after it.
  // A rank ending with an error calls this on the world instead of abort(): it waits up to
  // `wait` for every rank to call it too (a non-blocking barrier on a communicator of its
  // own, which no collective of loom's can match). If all do, having issued the same
  // collectives, rank 0 prints `why` once, naming itself, a rank whose message differs
  // prints its own, and every rank returns rank 0's exit status: the caller ends normally
  // (MPI_Finalize), no abort needed. Otherwise (a rank is elsewhere: healthy, stuck or
  // gone) it returns nullopt having printed nothing, and the caller aborts the job.
  std::optional<int> end_together(std::string_view subsystem, std::string_view why, int exit_code,
                                  std::chrono::milliseconds wait);

  // Collective over this communicator: the ranks that pass the same `color` (>= 0) form a
  // new communicator, ranked by (key, rank here). For jobs that run independent groups,
  // and for code that must work on a communicator other than the world. Its collectives
  // run under its own watchdog with this communicator's default deadline, and a report
  // cannot name missing ranks (the arrival table follows the world only). Destroy it on
  // every member rank, before shutdown_world().
  std::unique_ptr<MpiCommunicator> split(int color, int key);

  // Deadline for blocking collectives whose options give none (default 600 s;
  // config key comm.timeout_s).
  void set_default_timeout(std::chrono::milliseconds timeout);
  std::chrono::milliseconds default_timeout() const;
  Watchdog& watchdog();

  // MPI_Get_processor_name of this rank.
  std::string host_name() const;
  // The host of `rank` (gathered once in init_world, so failure reports can name it).
  const std::string& host_of(int rank) const;
  // MPI_Get_library_version, first line ("Open MPI v4.1.4, ...").
  static std::string library_version();

 private:
  MpiCommunicator();
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The number of ranks the launcher announced through its environment (Open MPI's
// OMPI_COMM_WORLD_SIZE, SLURM's SLURM_STEP_NUM_TASKS inside an srun step, PMI_SIZE,
// PMIX_SIZE...; torchrun's WORLD_SIZE, which MPI cannot join), or 0 when no launcher
// started this process.
int launcher_world_size();

// WORLD_SIZE when RANK and WORLD_SIZE > 1 are set as torchrun sets them and no MPI or SLURM
// launcher is around them (Note [torchrun] in dist/launcher.cpp); else 0.
int torchrun_world_size();

// Why a torchrun launch cannot start loom's ranks and what to run instead; "" when
// torchrun_world_size() is 0.
std::string torchrun_problem();

}  // namespace loom
