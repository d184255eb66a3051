#pragma once
// PeerMemory: direct reads and writes of a memory region that every rank registered, when
// all ranks run on one host: Linux cross-memory attach (process_vm_readv / writev), the
// kernel copying between the two address spaces with no intermediate buffer.
//
// Note [Peer memory]
// The replica sync of the embedding models (models/replica_sync.h) adds up every rank's
// copy of 55 MB tables several times a minute. Through MPI_Allreduce (Open MPI 4.1 on one
// host, pieces of 1 MiB) that cost 23-25 ms per 55 MB on a 2.6 GHz host, while the
// arithmetic needs one pass: read every copy, write the sum back to every copy. With the
// other ranks' tables addressable, each rank sums a fixed share of the elements and writes
// the result into every rank's copy: 8.7 ms for the same 55 MB (2 ranks, /tmp micro-test).
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
// LOOM_PEER_MEMORY=0 turns it off.
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
  // A piece of a peer's region: byte offset from its start, length in bytes.
  struct Extent {
    int64_t offset;
    int64_t bytes;
  };

  // Collective. Every rank registers [base, base + bytes) (the same size on every rank).
  // Returns null on every rank where the ranks cannot use it; `why` (optional) then says
  // why ("ranks on 2 hosts", "process_vm_readv from rank 1: Operation not permitted"...).
  // A world of one rank gets null too.
  static std::unique_ptr<PeerMemory> open(Communicator& comm, void* base, size_t bytes, std::string* why);
  ~PeerMemory();

  int size() const { return static_cast<int>(peers_.size()); }
  int rank() const { return rank_; }
  void* base() const { return base_; }
  size_t bytes() const { return bytes_; }

  // Reads the extents of rank `peer`'s region, in order, into dst (their total length).
  // Throws CommError naming the peer when the kernel refuses (the peer has exited).
  void read(int peer, std::span<const Extent> remote, void* dst) const;
  // Writes src (the extents' total length) into the extents of rank `peer`'s region.
  void write(int peer, std::span<const Extent> remote, const void* src) const;
  // Copies the extents of rank `peer`'s region into the same extents of this rank's.
  void pull(int peer, std::span<const Extent> extents) const;

 private:
  struct Peer {
    int64_t pid;
    uint64_t address;
  };
  PeerMemory() = default;
  // local null: each extent lands at the same offset of this rank's region.
  void transfer(bool out, int peer, std::span<const Extent> remote, void* local) const;

  int rank_ = 0;
  void* base_ = nullptr;
  size_t bytes_ = 0;
  std::vector<Peer> peers_;   // (world,)
};

}  // namespace loom
