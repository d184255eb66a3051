#pragma once
// PeerMemory: direct reads of the memory regions that every rank registered, when all
// ranks run on one host: Linux cross-memory attach (process_vm_readv), the
// kernel copying between the two address spaces with no intermediate buffer.
//
// Note [Peer memory]
// The replica sync of the embedding models (models/replica_sync.h) adds up every rank's
// copy of 55 MB tables several times a minute. Through MPI_Allreduce (Open MPI 4.1 on one
// host, pieces of 1 MiB) that cost 23-25 ms per 55 MB on a 2.6 GHz host, while the
// arithmetic needs one pass: read every copy, write the sum back to every copy. With the
// other ranks' tables addressable, each rank sums a fixed share of the elements and the
// others copy that share of the result: 8.7 ms for the same 55 MB (2 ranks, micro-test;
// Note [Owner-computes sync] in models/replica_sync.h).
// Why cross-memory attach and not an MPI-3 shared window: the tables then stay in the
// ranks' own memory, on transparent huge pages (Note [Huge pages for parameters]); shared
// memory from /dev/shm gets 4 KiB pages under Linux's default shmem_enabled = never, and
// CBOW trained 9 % slower on those.
// Availability: the same host and PID namespace (boot id and namespace compared), a kernel
// and seccomp profile that allow the calls (some container runtimes do not), and ptrace
// permission: under Yama's ptrace_scope 1 a process may only read its descendants, so
// open() declares every process of this user a permitted tracer (prctl PR_SET_PTRACER, as
// Open MPI's shared-memory transport does). open() proves it works by reading a random
// token from every peer; where anything fails every rank falls back together.
// The caller may turn it off (`enabled`; config comm.peer_memory): to compare it with MPI,
// or where letting every process of this user trace this one is not acceptable.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

namespace loom {

class Communicator;

class PeerMemory {
 public:
  // Memory a rank registers: every rank registers the same number of regions, region i of
  // the same size on every rank.
  struct Region {
    void* base;
    size_t bytes;
  };
  // A piece of a region: byte offset from its start, length in bytes.
  struct Extent {
    int64_t offset;
    int64_t bytes;
  };

  // Collective. Returns null on every rank where the ranks cannot use it or where any rank
  // passed enabled = false (then no rank declares tracers or probes its peers); `why`
  // (optional) then says why ("turned off", "the ranks run on more than one host",
  // "process_vm_readv from rank 1: Operation not permitted"...). A world of one rank gets
  // null too.
  static std::unique_ptr<PeerMemory> open(Communicator& comm, std::vector<Region> regions, bool enabled,
                                          std::string* why);
  ~PeerMemory();

  int size() const { return static_cast<int>(pids_.size()); }
  int rank() const { return rank_; }
  const Region& region(int i) const { return regions_[static_cast<size_t>(i)]; }

  // Reads the extents of region `region` of rank `peer`, in order, into dst (their total
  // length). Throws CommError naming the peer when the kernel refuses (the peer has exited).
  void read(int peer, int region, std::span<const Extent> remote, void* dst) const;
  // Copies the extents of rank `peer`'s region `from` into the same extents of this rank's
  // region `into`.
  void pull(int peer, int from, std::span<const Extent> extents, int into) const;

 private:
  PeerMemory() = default;
  // local null: each extent lands at the same offset of this rank's region `into`.
  void transfer(int peer, int region, std::span<const Extent> remote, void* local, int into) const;

  int rank_ = 0;
  std::vector<Region> regions_;                // this rank's
  std::vector<int64_t> pids_;                  // (world,)
  std::vector<std::vector<uint64_t>> address_;   // (world, regions)
};

}  // namespace loom
