#include "dist/arrival_table.h"

#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1  // C bindings only: no libmpi_cxx to link
#endif
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "core/error.h"
#include "dist/mpi_check.h"

namespace loom {

struct ArrivalTable::Impl {
  int rank = 0;
  int size = 1;
  MPI_Comm comm = MPI_COMM_NULL;   // duplicated from the world, used by the table only
  MPI_Win window = MPI_WIN_NULL;   // on rank 0: int64[2 * size]; elsewhere: empty
  int64_t* entries = nullptr;      // (size, 2) on rank 0: sequence number, heartbeat
  int64_t* shared = nullptr;       // (size, 2) rank 0's entries mapped here (one node only)
  bool open = false;
  std::vector<std::string> hosts;  // (size) or empty

  std::thread heart;
  std::mutex heart_mutex;
  std::condition_variable heart_wake;
  bool heart_stop = false;         // guarded by heart_mutex

  void put(int64_t value, int slot) {
    if (shared != nullptr) {   // one node: a plain atomic store into rank 0's segment
      __atomic_store_n(shared + 2 * rank + slot, value, __ATOMIC_RELEASE);
      return;
    }
    LOOM_MPI_CHECK(MPI_Accumulate(&value, 1, MPI_INT64_T, 0, 2 * rank + slot, 1, MPI_INT64_T,
                                  MPI_REPLACE, window));
    LOOM_MPI_CHECK(MPI_Win_flush(0, window));
  }

  // Writes 1, 2, 3, ... into this rank's heartbeat entry every kBeatMs until stopped. A
  // write that fails (the job is ending) ends the heartbeat quietly.
  void beat() {
    int64_t count = 0;
    std::unique_lock<std::mutex> lock(heart_mutex);
    while (!heart_stop) {
      lock.unlock();
      try {
        put(++count, 1);
      } catch (const Error&) {
        return;
      }
      lock.lock();
      heart_wake.wait_for(lock, std::chrono::milliseconds(kBeatMs), [this] { return heart_stop; });
    }
  }
};

ArrivalTable::ArrivalTable(int rank, int size) : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.rank = rank;
  s.size = size;
  LOOM_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &s.comm));
  LOOM_MPI_CHECK(MPI_Comm_set_errhandler(s.comm, MPI_ERRORS_RETURN));
  // Every rank on one node: a shared-memory window, written and read with atomics (no MPI
  // call per collective). Otherwise an RMA window written with MPI_Accumulate.
  MPI_Comm node = MPI_COMM_NULL;
  LOOM_MPI_CHECK(MPI_Comm_split_type(s.comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node));
  int node_size = 0;
  LOOM_MPI_CHECK(MPI_Comm_size(node, &node_size));
  LOOM_MPI_CHECK(MPI_Comm_free(&node));
  MPI_Aint bytes = rank == 0 ? static_cast<MPI_Aint>(sizeof(int64_t)) * 2 * size : 0;
  if (node_size == size) {
    LOOM_MPI_CHECK(MPI_Win_allocate_shared(bytes, sizeof(int64_t), MPI_INFO_NULL, s.comm,
                                           &s.entries, &s.window));
    MPI_Aint root_bytes = 0;
    int unit = 0;
    LOOM_MPI_CHECK(MPI_Win_shared_query(s.window, 0, &root_bytes, &unit, &s.shared));
  } else {
    LOOM_MPI_CHECK(MPI_Win_allocate(bytes, sizeof(int64_t), MPI_INFO_NULL, s.comm, &s.entries,
                                    &s.window));
  }
  LOOM_MPI_CHECK(MPI_Win_set_errhandler(s.window, MPI_ERRORS_RETURN));
  // One passive-target epoch for the table's whole life: record() and read() only flush.
  LOOM_MPI_CHECK(MPI_Win_lock_all(MPI_MODE_NOCHECK, s.window));
  if (rank == 0) {
    std::fill(s.entries, s.entries + 2 * size, int64_t{0});
    LOOM_MPI_CHECK(MPI_Win_sync(s.window));
  }
  s.open = true;
  LOOM_MPI_CHECK(MPI_Barrier(s.comm));  // nobody writes before rank 0 has zeroed it
  s.heart = std::thread([&s] { s.beat(); });
}

ArrivalTable::~ArrivalTable() {
  // Without free() (the job is ending abnormally) the heartbeat thread may be inside MPI:
  // leave it to the process's end rather than block on it.
  if (impl_ && impl_->heart.joinable()) impl_->heart.detach();
}

void ArrivalTable::record(int64_t seq) { impl_->put(seq, 0); }

ArrivalTable::Entries ArrivalTable::read() {
  Impl& s = *impl_;
  std::vector<int64_t> flat(2 * static_cast<size_t>(s.size), 0);  // (size, 2)
  if (s.shared != nullptr) {
    for (size_t i = 0; i < flat.size(); ++i) flat[i] = __atomic_load_n(s.shared + i, __ATOMIC_ACQUIRE);
  } else {
    LOOM_MPI_CHECK(MPI_Get_accumulate(nullptr, 0, MPI_INT64_T, flat.data(), 2 * s.size,
                                      MPI_INT64_T, 0, 0, 2 * s.size, MPI_INT64_T, MPI_NO_OP,
                                      s.window));
    LOOM_MPI_CHECK(MPI_Win_flush(0, s.window));
  }
  Entries out;
  for (int r = 0; r < s.size; ++r) {
    out.seqs.push_back(flat[2 * static_cast<size_t>(r)]);
    out.beats.push_back(flat[2 * static_cast<size_t>(r) + 1]);
  }
  return out;
}

void ArrivalTable::set_hosts(std::vector<std::string> hosts) { impl_->hosts = std::move(hosts); }

namespace {

std::string last_entered(int64_t last) {
  return "(last entered " + (last > 0 ? "#" + std::to_string(last) : std::string("none")) + ")";
}

// "rank 2 (last entered #40)" or "ranks 1 (last entered #3), 2 (last entered none)"
std::string list_ranks(const std::vector<int>& ranks, const std::vector<int64_t>& seqs) {
  std::string text = ranks.size() == 1 ? "rank " : "ranks ";
  for (size_t i = 0; i < ranks.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(ranks[i]) + " " + last_entered(seqs[static_cast<size_t>(ranks[i])]);
  }
  return text;
}

}  // namespace

std::string ArrivalTable::explain(int64_t seq) {
  const std::vector<std::string>& hosts = impl_->hosts;
  auto where = [&hosts](const std::vector<int>& ranks) {
    std::string text;   // " (rank 2 on n2, rank 3 on n2)"
    for (int r : ranks) {
      if (static_cast<size_t>(r) >= hosts.size()) return std::string();
      text += (text.empty() ? " (" : ", ") + std::string("rank ") + std::to_string(r) + " on " +
              hosts[static_cast<size_t>(r)];
    }
    return text.empty() ? text : text + ")";
  };
  Entries first = read();
  std::vector<int> missing;
  for (int r = 0; r < impl_->size; ++r)
    if (first.seqs[static_cast<size_t>(r)] < seq) missing.push_back(r);

  // Whose heartbeat has stopped? A rank that did not arrive but is alive is usually held in
  // an earlier collective by one that is not (a stopped rank blocks its partners there), so
  // the silent ones are named first.
  std::this_thread::sleep_for(std::chrono::milliseconds(kBeatMs * kBeatsToStale));
  Entries second = read();
  auto is_silent = [&](int r) { return second.beats[static_cast<size_t>(r)] == first.beats[static_cast<size_t>(r)]; };
  const std::string stale = std::to_string(kBeatMs * kBeatsToStale);
  if (!missing.empty()) {
    std::vector<int> silent, alive;
    for (int r : missing) (is_silent(r) ? silent : alive).push_back(r);
    if (silent.empty()) return list_ranks(missing, first.seqs) + " did not arrive" + where(missing);
    std::string text = list_ranks(silent, first.seqs) + " did not arrive and " + (silent.size() == 1 ? "is" : "are") +
                       " unresponsive (no heartbeat for " + stale + " ms: stopped by a signal or stalled)" +
                       where(silent);
    if (!alive.empty())
      text += "; " + list_ranks(alive, first.seqs) + " did not arrive either but " +
              (alive.size() == 1 ? "is" : "are") + " alive (waiting on the unresponsive rank in an earlier collective)";
    return text;
  }

  // Every rank entered it.
  std::vector<int> silent;
  for (int r = 0; r < impl_->size; ++r)
    if (is_silent(r)) silent.push_back(r);
  if (silent.empty())
    return "every rank entered it and every rank is alive, so it is stuck inside MPI (the "
           "network failed, or a rank died after entering)";
  return list_ranks(silent, second.seqs) + " entered it but " +
         (silent.size() == 1 ? "is" : "are") + " unresponsive (no heartbeat for " + stale +
         " ms: stopped by a signal or stalled)" +
         where(silent);
}

void ArrivalTable::free() {
  Impl& s = *impl_;
  if (!s.open) return;
  s.open = false;
  {
    std::lock_guard<std::mutex> lock(s.heart_mutex);
    s.heart_stop = true;
  }
  s.heart_wake.notify_all();
  if (s.heart.joinable()) s.heart.join();
  LOOM_MPI_CHECK(MPI_Win_unlock_all(s.window));
  LOOM_MPI_CHECK(MPI_Win_free(&s.window));
  LOOM_MPI_CHECK(MPI_Comm_free(&s.comm));
}

}  // namespace loom
