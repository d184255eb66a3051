// MpiCommunicator: set-up, shutdown and abort. The collectives are in mpi_collectives.cpp,
// which shares MpiCommunicator::Impl through dist/mpi_impl.h.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1  // C bindings only: no libmpi_cxx to link
#endif
#include <mpi.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <vector>
#include <string>
#include <thread>

#include "core/log.h"
#include "dist/arrival_table.h"
#include "dist/mpi_check.h"
#include "dist/mpi_handle.h"
#include "dist/mpi_impl.h"

namespace loom {
namespace {

MpiCommunicator* g_world = nullptr;

const char* thread_level_name(int level) {
  switch (level) {
    case MPI_THREAD_SINGLE: return "MPI_THREAD_SINGLE";
    case MPI_THREAD_FUNNELED: return "MPI_THREAD_FUNNELED";
    case MPI_THREAD_SERIALIZED: return "MPI_THREAD_SERIALIZED";
    case MPI_THREAD_MULTIPLE: return "MPI_THREAD_MULTIPLE";
    default: return "an unknown thread level";
  }
}

std::string launcher_mismatch(int announced) {
  std::string n = std::to_string(announced);
  const char* slurm_step = std::getenv("SLURM_STEP_ID");
  if (std::getenv("OMPI_COMM_WORLD_SIZE") == nullptr && slurm_step != nullptr)
    return "srun started " + n + " tasks but MPI sees a world of 1: each task came up as a "
           "separate singleton. Launch with `srun --mpi=pmix` (see `srun --mpi=list`; Open MPI "
           "needs PMIx or PMI2 support in SLURM), or run `mpirun -np " + n +
           "` inside the allocation";
  if (std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr)
    return "mpirun started " + n + " ranks but MPI sees a world of 1: this program is linked "
           "against another MPI library than the mpirun that launched it. Use the mpirun of "
           "the MPI loom was built with (" + MpiCommunicator::library_version() + ")";
  if (std::string torchrun = torchrun_problem(); !torchrun.empty()) return torchrun;
  return "the process manager announced " + n + " ranks (PMI_SIZE/PMIX_SIZE) but MPI sees a "
         "world of 1: launch with the mpirun of the MPI loom was built with, or with srun "
         "--mpi=pmix";
}

// Ends every rank of the job with `exit_code`. If MPI_Abort does not end this process
// (a wedged runtime), a timer thread _exits it after Watchdog::kAbortGrace.
[[noreturn]] void abort_job(int exit_code) {
  std::fflush(stderr);
  std::thread([exit_code] {
    std::this_thread::sleep_for(Watchdog::kAbortGrace);
    std::_Exit(exit_code);
  }).detach();
  MPI_Abort(MPI_COMM_WORLD, exit_code);
  std::_Exit(exit_code);
}

// Every rank's MPI_Get_processor_name, in rank order (collective over `comm`).
std::vector<std::string> gather_hosts(MPI_Comm comm, int size) {
  char mine[MPI_MAX_PROCESSOR_NAME] = {};
  int length = 0;
  LOOM_MPI_CHECK(MPI_Get_processor_name(mine, &length));
  std::vector<char> all(static_cast<size_t>(MPI_MAX_PROCESSOR_NAME) * static_cast<size_t>(size));
  LOOM_MPI_CHECK(MPI_Allgather(mine, MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all.data(), MPI_MAX_PROCESSOR_NAME,
                               MPI_CHAR, comm));
  std::vector<std::string> hosts;
  for (int r = 0; r < size; ++r) {
    const char* name = all.data() + static_cast<size_t>(r) * MPI_MAX_PROCESSOR_NAME;
    hosts.emplace_back(name, strnlen(name, MPI_MAX_PROCESSOR_NAME));
  }
  return hosts;
}

// Note [Arrival table across hosts]
// The table is an MPI one-sided window. Open MPI 4.1 has no one-sided component for TCP
// between hosts under MPI_THREAD_MULTIPLE (osc/sm needs one node, osc/rdma and osc/ucx an
// RDMA network, osc/pt2pt refuses THREAD_MULTIPLE), so MPI_Win_allocate fails there. The
// job then runs without the table: the watchdog still ends a stuck collective, naming the
// operation, step and rank, but cannot say which ranks are missing. Every rank takes the
// same decision (an allreduce of the outcome).
std::unique_ptr<ArrivalTable> try_arrival_table(MPI_Comm comm, int rank, int size) {
  std::unique_ptr<ArrivalTable> table;
  std::string why;
  try {
    table = std::make_unique<ArrivalTable>(rank, size);
  } catch (const Error& e) {
    why = e.what();
  }
  int ok = table ? 1 : 0;
  int all_ok = 0;
  LOOM_MPI_CHECK(MPI_Allreduce(&ok, &all_ok, 1, MPI_INT, MPI_MIN, comm));
  if (all_ok == 1) return table;
  if (rank == 0)
    log::warn("comm", "no MPI one-sided window between these hosts (" +
                          (why.empty() ? std::string("failed on another rank") : why) +
                          "): the watchdog still ends a stuck job but cannot tell which ranks "
                          "are missing (see Note [Arrival table across hosts])");
  (void)table.release();   // a window some ranks hold cannot be freed collectively: keep it
  return nullptr;
}

void stop_watchdog_at_exit() {
  if (g_world != nullptr) g_world->watchdog().stop();
}

}  // namespace

MpiCommunicator::MpiCommunicator() : impl_(std::make_unique<Impl>()) {}

// The world is freed by shutdown_world() (comm is MPI_COMM_NULL here then); a split
// communicator frees its MPI communicator here, on every member rank.
MpiCommunicator::~MpiCommunicator() {
  if (!impl_) return;
  if (impl_->watchdog) impl_->watchdog->stop();
  int finalized = 1;
  if (MPI_Finalized(&finalized) != MPI_SUCCESS) finalized = 1;   // then leave MPI alone
  if (impl_->comm != MPI_COMM_NULL && finalized == 0) {
    int rc = MPI_Comm_free(&impl_->comm);
    if (rc != MPI_SUCCESS)
      log::warn("comm", "MPI_Comm_free of a split communicator failed (MPI error " + std::to_string(rc) + ")");
  }
}

MpiCommHandle MpiCommunicator::mpi_comm() const { return mpi_handle_to(impl_->comm); }

std::unique_ptr<MpiCommunicator> MpiCommunicator::split(int color, int key) {
  LOOM_CHECK(color >= 0, CommError,
             "MpiCommunicator::split: color " + std::to_string(color) + " is negative; every rank joins a group");
  Impl& parent = *impl_;
  std::unique_ptr<MpiCommunicator> group(new MpiCommunicator());
  Impl& s = *group->impl_;
  {
    // A collective on the parent: numbered and under its deadline like the others.
    OpInfo info = parent.next_op(step_, "split", nullptr, Tensor(nullptr, {0}, DType::kU8));
    Watchdog::Guard guard = parent.enter(info, {});
    LOOM_MPI_CHECK_OP(info, MPI_Comm_split(parent.comm, color, key, &s.comm));
  }
  LOOM_MPI_CHECK(MPI_Comm_set_errhandler(s.comm, MPI_ERRORS_RETURN));
  LOOM_MPI_CHECK(MPI_Comm_rank(s.comm, &s.rank));
  LOOM_MPI_CHECK(MPI_Comm_size(s.comm, &s.size));
  s.thread_level = parent.thread_level;
  s.hosts = gather_hosts(s.comm, s.size);
  Watchdog::ExplainFn explain = [&s](int64_t) -> std::string {
    if (s.size == 1) return "this is the only rank of its group";
    return "which ranks are missing is unknown (a split communicator has no arrival table)";
  };
  s.watchdog = std::make_unique<Watchdog>(std::move(explain),
                                          [](const std::string&, int code) { abort_job(code); });
  s.watchdog->set_default_timeout(parent.watchdog->default_timeout());
  log::debug("comm", "split: group " + std::to_string(color) + " of " + std::to_string(s.size) + " ranks, rank " +
                         std::to_string(s.rank) + " in it");
  return group;
}

MpiCommunicator& MpiCommunicator::init_world(int* argc, char*** argv) {
  if (g_world != nullptr) return *g_world;
  int initialized = 0;
  LOOM_MPI_CHECK(MPI_Initialized(&initialized));
  int provided = MPI_THREAD_SINGLE;
  if (initialized == 0) {
    LOOM_MPI_CHECK(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided));
  } else {
    LOOM_MPI_CHECK(MPI_Query_thread(&provided));
  }
  LOOM_MPI_CHECK(MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN));
  int rank = 0;
  int size = 1;
  LOOM_MPI_CHECK(MPI_Comm_rank(MPI_COMM_WORLD, &rank));
  LOOM_MPI_CHECK(MPI_Comm_size(MPI_COMM_WORLD, &size));
  int announced = launcher_world_size();
  if (announced > 1 && size == 1) {
    std::string why = launcher_mismatch(announced);
    if (initialized == 0) MPI_Finalize();
    throw CommError(why);
  }
  log::set_rank(rank, size);
  if (announced > 1 && announced != size)
    log::warn("comm", "the launcher announced " + std::to_string(announced) +
                          " ranks but MPI sees " + std::to_string(size) + "; using MPI's world");

  auto* world = new MpiCommunicator();
  Impl& s = *world->impl_;
  s.rank = rank;
  s.size = size;
  s.owns_mpi = initialized == 0;
  s.thread_level = provided;
  LOOM_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &s.comm));
  LOOM_MPI_CHECK(MPI_Comm_set_errhandler(s.comm, MPI_ERRORS_RETURN));
  LOOM_MPI_CHECK(MPI_Comm_dup(MPI_COMM_WORLD, &s.error_comm));   // Note [An error every rank reaches]
  LOOM_MPI_CHECK(MPI_Comm_set_errhandler(s.error_comm, MPI_ERRORS_RETURN));
  s.hosts = gather_hosts(s.comm, size);
  bool multiple = provided >= MPI_THREAD_MULTIPLE;
  if (multiple && size > 1) {
    s.arrivals = try_arrival_table(s.comm, rank, size);
    if (s.arrivals) s.arrivals->set_hosts(s.hosts);
  }
  if (!multiple)
    log::warn("comm", std::string("MPI provides ") + thread_level_name(provided) +
                          ", not MPI_THREAD_MULTIPLE: the watchdog still ends a stuck job but "
                          "cannot tell which ranks are missing");
  Watchdog::ExplainFn explain = [&s](int64_t seq) -> std::string {
    if (s.arrivals) return s.arrivals->explain(seq);
    if (s.size == 1) return "this is the only rank";
    if (s.thread_level >= MPI_THREAD_MULTIPLE)
      return "which ranks are missing is unknown (no one-sided MPI window between these hosts)";
    return "which ranks are missing is unknown (no MPI_THREAD_MULTIPLE)";
  };
  s.watchdog = std::make_unique<Watchdog>(std::move(explain),
                                          [](const std::string&, int code) { abort_job(code); });
  g_world = world;
  std::atexit(stop_watchdog_at_exit);
  log::debug("comm", "MPI world of " + std::to_string(size) + " ranks, " +
                         thread_level_name(provided) + ", " + library_version());
  return *world;
}

MpiCommunicator& MpiCommunicator::world() {
  LOOM_ASSERT(g_world != nullptr, "MpiCommunicator::world() before init_world()");
  return *g_world;
}

bool MpiCommunicator::world_initialized() { return g_world != nullptr; }

void MpiCommunicator::shutdown_world() {
  if (g_world == nullptr) return;
  MpiCommunicator* world = g_world;
  Impl& s = *world->impl_;
  // Every rank passes this barrier before the collective frees below, under the watchdog,
  // so a peer that stalls at the end turns into a report instead of a hung job.
  world->barrier();
  s.watchdog->stop();
  if (s.arrivals) s.arrivals->free();
  LOOM_MPI_CHECK(MPI_Comm_free(&s.comm));
  if (s.error_comm != MPI_COMM_NULL) LOOM_MPI_CHECK(MPI_Comm_free(&s.error_comm));
  bool owns_mpi = s.owns_mpi;
  g_world = nullptr;
  delete world;
  if (owns_mpi) LOOM_MPI_CHECK(MPI_Finalize());
}

int MpiCommunicator::rank() const { return impl_->rank; }
int MpiCommunicator::size() const { return impl_->size; }

void MpiCommunicator::abort(std::string_view why, int exit_code) {
  log::error("comm", std::string(why) + " (ending the job with exit status " +
                         std::to_string(exit_code) + ")");
  abort_job(exit_code);
}

std::optional<int> MpiCommunicator::end_together(std::string_view subsystem, std::string_view why,
                                                 int exit_code, std::chrono::milliseconds wait) {
  Impl& s = *impl_;
  if (s.error_comm == MPI_COMM_NULL) return std::nullopt;
  MPI_Request request = MPI_REQUEST_NULL;
  if (MPI_Ibarrier(s.error_comm, &request) != MPI_SUCCESS) return std::nullopt;
  const auto deadline = std::chrono::steady_clock::now() + wait;
  for (int done = 0; !done;) {
    // Left pending when the wait runs out: the job is aborted next.
    if (MPI_Test(&request, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) return std::nullopt;
    if (!done && std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    if (!done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // Every rank is here, so blocking collectives on error_comm cannot hang: agree on what
  // to print and on the exit status. (The world's collectives issued so far must agree as
  // well, or ending normally would pair one rank's last collective with another's barrier.)
  const std::array<int64_t, 3> mine = {static_cast<int64_t>(std::hash<std::string_view>{}(why)), s.seq,
                                       static_cast<int64_t>(exit_code)};
  std::vector<int64_t> all(3 * static_cast<size_t>(s.size));
  if (MPI_Allgather(mine.data(), 3, MPI_INT64_T, all.data(), 3, MPI_INT64_T, s.error_comm) != MPI_SUCCESS)
    return std::nullopt;
  bool same_text = true, same_seq = true;
  for (int r = 0; r < s.size; ++r) {
    same_text = same_text && all[3 * static_cast<size_t>(r)] == all[0];
    same_seq = same_seq && all[3 * static_cast<size_t>(r) + 1] == all[1];
  }
  if (!same_seq) return std::nullopt;   // the same on every rank: they all abort
  const bool print = s.rank == 0 || mine[0] != all[0];
  if (print) log::error(subsystem, std::string(why) + (s.rank == 0 && same_text ? " (on every rank)" : ""));
  std::fflush(stderr);
  return static_cast<int>(all[2]);
}

void MpiCommunicator::set_default_timeout(std::chrono::milliseconds timeout) {
  impl_->watchdog->set_default_timeout(timeout);
}

std::chrono::milliseconds MpiCommunicator::default_timeout() const {
  return impl_->watchdog->default_timeout();
}

Watchdog& MpiCommunicator::watchdog() { return *impl_->watchdog; }

std::string MpiCommunicator::host_name() const {
  char name[MPI_MAX_PROCESSOR_NAME] = {};
  int length = 0;
  LOOM_MPI_CHECK(MPI_Get_processor_name(name, &length));
  return std::string(name, static_cast<size_t>(length));
}

const std::string& MpiCommunicator::host_of(int rank) const {
  LOOM_ASSERT(rank >= 0 && rank < static_cast<int>(impl_->hosts.size()), "host_of: rank out of range");
  return impl_->hosts[static_cast<size_t>(rank)];
}

std::string MpiCommunicator::library_version() {
  char text[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  LOOM_MPI_CHECK(MPI_Get_library_version(text, &length));
  std::string version(text);   // length may count a trailing NUL
  size_t end = version.find_first_of("\r\n");
  if (end != std::string::npos) version.resize(end);
  while (!version.empty() && (version.back() == ',' || version.back() == ' ')) version.pop_back();
  return version;
}

}  // namespace loom
