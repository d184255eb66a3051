#pragma once
// ArrivalTable: where the watchdog learns which ranks never entered a collective.
//
// Rank 0 exposes two int64 per rank in an MPI RMA window on a communicator duplicated
// from the world for this purpose only. Before each collective a rank writes the
// collective's sequence number into its first entry. When every rank is on one node the
// window is MPI shared memory and the write is an atomic store (no MPI call per
// collective: the MPI_Accumulate + flush it replaced cost 5-8 % of a 1 MiB allreduce at 2
// ranks); across nodes it is MPI_Accumulate with MPI_REPLACE, then a flush: one small
// one-sided write, no message to match, no target involvement with the RDMA one-sided
// components. A heartbeat thread per rank
// writes a counter into the second entry every kBeat. On a deadline the watchdog thread
// reads the whole table (MPI_Get_accumulate with MPI_NO_OP); the ranks whose entry is
// below the stuck collective's number are the ones that did not arrive. When every rank
// arrived (a rank was stopped or stalled after entering), the table is read again after a
// few beats and the ranks whose heartbeat did not move are named as unresponsive. The
// reader needs no cooperation from the missing rank; if rank 0 itself is stopped the read
// may not return, which the watchdog bounds and reports (see Note [Watchdog design]).
//
// Needs MPI_THREAD_MULTIPLE (the watchdog thread reads while the main thread may be
// inside a collective). mpi.h stays in the .cpp: state lives behind a pimpl.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace loom {

class ArrivalTable {
 public:
  // Collective over MPI_COMM_WORLD (every rank calls it).
  ArrivalTable(int rank, int size);
  ~ArrivalTable();  // frees nothing collective; call free() on every rank first
  ArrivalTable(const ArrivalTable&) = delete;
  ArrivalTable& operator=(const ArrivalTable&) = delete;

  // This rank has entered collective `seq` (called before the collective starts).
  void record(int64_t seq);
  // Host of each rank, indexed by rank: explain() then names the hosts of missing ranks.
  void set_hosts(std::vector<std::string> hosts);
  // One beat of the heartbeat thread; explain() waits kBeatsToStale of them.
  static constexpr int kBeatMs = 150;
  static constexpr int kBeatsToStale = 5;

  struct Entries {
    std::vector<int64_t> seqs;   // (size) last entered sequence number, 0: none yet
    std::vector<int64_t> beats;  // (size) heartbeat counter
  };
  // Every rank's entries, indexed by rank.
  Entries read();
  // "rank 2 (last entered #40) did not arrive (rank 2 on n2)" for collective `seq`; or,
  // when every rank entered it, "rank 2 (last entered #41) is unresponsive ...". Blocks
  // for kBeatsToStale beats in the second case.
  std::string explain(int64_t seq);
  // Collective: stops the heartbeat, closes the window and frees the communicator.
  void free();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace loom
