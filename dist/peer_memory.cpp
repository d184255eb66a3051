// PeerMemory (peer_memory.h, Note [Peer memory]).
#include "dist/peer_memory.h"

#include <sys/prctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>

#include "core/error.h"
#include "dist/communicator.h"

namespace loom {
namespace {

// FNV-1a of the boot id: equal on every process of one booted kernel, i.e. one host (or one
// virtual machine).
uint64_t boot_id_hash() {
  std::ifstream in("/proc/sys/kernel/random/boot_id");
  std::string id;
  std::getline(in, id);
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : id) h = (h ^ c) * 1099511628211ull;
  return id.empty() ? 0 : h;
}

// The inode of this process's PID namespace ("pid:[4026531836]"): pids name the same
// processes only within one namespace.
uint64_t pid_namespace() {
  char link[64] = {};
  const ssize_t n = readlink("/proc/self/ns/pid", link, sizeof link - 1);
  if (n <= 0) return 0;
  const char* open = std::strchr(link, '[');
  return open == nullptr ? 0 : std::strtoull(open + 1, nullptr, 10);
}

}  // namespace

std::unique_ptr<PeerMemory> PeerMemory::open(Communicator& comm, std::vector<Region> regions, bool enabled,
                                             std::string* why) {
  auto say = [&](std::string text) {
    if (why != nullptr) *why = std::move(text);
  };
  const int world = comm.size();
  if (world < 2) {
    say("one rank");
    return nullptr;
  }
  // What every rank tells the others: host, PID namespace, pid, probe word, then each
  // region's address and size.
  static uint64_t probe = 0;
  probe = std::random_device{}() | (uint64_t{std::random_device{}()} << 32) | 1;
  constexpr int kFixed = 7;
  std::vector<uint64_t> mine = {boot_id_hash(),
                                pid_namespace(),
                                static_cast<uint64_t>(getpid()),
                                reinterpret_cast<uint64_t>(&probe),
                                probe,
                                enabled ? 1u : 0u,
                                static_cast<uint64_t>(regions.size())};
  for (const Region& r : regions) {
    mine.push_back(reinterpret_cast<uint64_t>(r.base));
    mine.push_back(static_cast<uint64_t>(r.bytes));
  }
  const int64_t fields = static_cast<int64_t>(mine.size());
  std::vector<uint64_t> all(static_cast<size_t>(fields * world));
  comm.allgather(Tensor::of(reinterpret_cast<int64_t*>(mine.data()), fields),
                 Tensor::of(reinterpret_cast<int64_t*>(all.data()), fields * world));
  auto field = [&](int r, int64_t f) { return all[static_cast<size_t>(r * fields + f)]; };
  std::string problem;
  for (int r = 0; r < world && problem.empty(); ++r) {
    if (field(r, 5) == 0) problem = "turned off";
    else if (field(r, 0) != field(0, 0) || field(r, 0) == 0) problem = "the ranks run on more than one host";
    else if (field(r, 1) != field(0, 1) || field(r, 1) == 0) problem = "the ranks run in different PID namespaces";
    for (size_t i = 0; i < regions.size() && problem.empty(); ++i)
      if (field(r, kFixed + 2 * static_cast<int64_t>(i) + 1) != regions[i].bytes)
        problem = "the ranks registered regions of different sizes";
  }
  int64_t failed = problem.empty() ? 0 : 1;
  if (failed == 0) {
    // Let the peers read this process (Yama ptrace_scope 1), then read every peer's probe.
    prctl(PR_SET_PTRACER, PR_SET_PTRACER_ANY, 0, 0, 0);
    comm.barrier();
    for (int r = 0; r < world && failed == 0; ++r) {
      if (r == comm.rank()) continue;
      uint64_t seen = 0;
      iovec local{&seen, sizeof seen};
      iovec remote{reinterpret_cast<void*>(field(r, 3)), sizeof seen};
      errno = 0;
      const ssize_t n = process_vm_readv(static_cast<pid_t>(field(r, 2)), &local, 1, &remote, 1, 0);
      if (n != static_cast<ssize_t>(sizeof seen) || seen != field(r, 4)) {
        failed = 1;
        problem = std::string("process_vm_readv from rank ") + std::to_string(r) + ": " +
                  (n < 0 ? std::strerror(errno) : "read the wrong bytes");
      }
    }
  }
  int64_t any = failed;
  comm.allreduce(Tensor::of(&any, 1), ReduceOp::kMax);
  if (any != 0) {
    say(problem.empty() ? "another rank could not read its peers' memory" : problem);
    return nullptr;
  }
  std::unique_ptr<PeerMemory> p(new PeerMemory());
  p->rank_ = comm.rank();
  p->regions_ = std::move(regions);
  for (int r = 0; r < world; ++r) {
    p->pids_.push_back(static_cast<int64_t>(field(r, 2)));
    std::vector<uint64_t> addresses;
    for (size_t i = 0; i < p->regions_.size(); ++i) addresses.push_back(field(r, kFixed + 2 * static_cast<int64_t>(i)));
    p->address_.push_back(std::move(addresses));
  }
  say("");
  return p;
}

PeerMemory::~PeerMemory() = default;

void PeerMemory::read(int peer, int region, std::span<const Extent> remote, void* dst) const {
  transfer(peer, region, remote, dst, 0);
}

void PeerMemory::pull(int peer, int from, std::span<const Extent> extents, int into) const {
  transfer(peer, from, extents, nullptr, into);
}

void PeerMemory::transfer(int peer, int region, std::span<const Extent> remote, void* local, int into) const {
  LOOM_ASSERT(peer >= 0 && peer < size() && peer != rank_, "PeerMemory: no such peer");
  LOOM_ASSERT(region >= 0 && region < static_cast<int>(regions_.size()) && into >= 0 &&
                  into < static_cast<int>(regions_.size()),
              "PeerMemory: no such region");
  const uint64_t address = address_[static_cast<size_t>(peer)][static_cast<size_t>(region)];
  const size_t limit = std::min(regions_[static_cast<size_t>(region)].bytes, regions_[static_cast<size_t>(into)].bytes);
  char* here = static_cast<char*>(regions_[static_cast<size_t>(into)].base);
  constexpr size_t kPieces = 1024;   // IOV_MAX on Linux
  iovec pieces[kPieces], mine[kPieces];
  char* at = static_cast<char*>(local);
  for (size_t from = 0; from < remote.size(); from += kPieces) {
    const size_t n = std::min(kPieces, remote.size() - from);
    size_t total = 0;
    for (size_t i = 0; i < n; ++i) {
      const Extent& e = remote[from + i];
      LOOM_ASSERT(e.offset >= 0 && e.bytes >= 0 && static_cast<size_t>(e.offset + e.bytes) <= limit,
                  "PeerMemory: extent outside the region");
      pieces[i] = {reinterpret_cast<void*>(address + static_cast<uint64_t>(e.offset)), static_cast<size_t>(e.bytes)};
      if (local == nullptr) mine[i] = {here + e.offset, static_cast<size_t>(e.bytes)};
      total += static_cast<size_t>(e.bytes);
    }
    if (local != nullptr) mine[0] = {at, total};
    const pid_t pid = static_cast<pid_t>(pids_[static_cast<size_t>(peer)]);
    const ssize_t moved = process_vm_readv(pid, mine, local == nullptr ? n : 1, pieces, n, 0);
    LOOM_CHECK(moved == static_cast<ssize_t>(total), CommError,
               "process_vm_readv from rank " + std::to_string(peer) + " (pid " + std::to_string(pid) + "): " +
                   (moved < 0 ? std::string(std::strerror(errno))
                              : "moved " + std::to_string(moved) + " of " + std::to_string(total) + " bytes") +
                   "; has that rank exited?");
    if (local != nullptr) at += total;
  }
}

}  // namespace loom
