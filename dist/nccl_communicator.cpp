// NcclCommunicator: NCCL collectives on device buffers, with the MPI world for set-up
// (unique id over host memory: no CUDA-aware MPI needed), the default deadline and ending
// the job (MPI_Abort). Notes [NCCL streams and events] and [NCCL deadlines] in the header.
#include "dist/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "core/buffer.h"
#include "core/cuda/check.h"
#include "core/error.h"
#include "core/log.h"
#include "dist/mpi_communicator.h"
#include "dist/watchdog.h"

// Every NCCL return code goes through this (STYLE.md rule 7); CUDA's through
// core/cuda/check.h. Calls on the communicator itself go through Impl::settle instead,
// which waits out ncclInProgress and aborts the communicator on failure.
#define LOOM_NCCL_CHECK(expr)                                                              \
  do {                                                                                     \
    ncclResult_t loom_nccl_rc_ = (expr);                                                   \
    if (loom_nccl_rc_ != ncclSuccess) [[unlikely]]                                         \
      ::loom::detail::throw_library_error("NCCL", #expr, __FILE__, __LINE__,               \
                                          ncclGetErrorString(loom_nccl_rc_));              \
  } while (0)

// An NCCL call on the communicator, for op `info` with deadline `timeout` (zero: the
// default): ncclInProgress is waited out.
#define LOOM_NCCL_CALL(impl, info, timeout, expr) \
  (impl).settle((info), timeout, (expr), #expr, __FILE__, __LINE__)

namespace loom {
namespace {

ncclDataType_t nccl_type(DType dtype) {
  switch (dtype) {
    case DType::kF32: return ncclFloat32;
    case DType::kF64: return ncclFloat64;
    case DType::kBF16: return ncclBfloat16;
    case DType::kF16: return ncclFloat16;
    case DType::kI32: return ncclInt32;
    case DType::kI64: return ncclInt64;
    case DType::kU8: return ncclUint8;
    case DType::kU64: return ncclUint64;
  }
  LOOM_ASSERT(false, "unknown dtype");
  return ncclFloat32;
}

bool is_floating(DType dtype) {
  return dtype == DType::kF32 || dtype == DType::kF64 || dtype == DType::kBF16 ||
         dtype == DType::kF16;
}

ncclRedOp_t nccl_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return ncclSum;
    case ReduceOp::kAvg: return ncclAvg;
    case ReduceOp::kMax: return ncclMax;
    case ReduceOp::kMin: return ncclMin;
  }
  return ncclSum;
}

char* at(Tensor t, int64_t element) {
  return static_cast<char*>(t.data()) + static_cast<size_t>(element) * dtype_size(t.dtype());
}

[[noreturn]] void bad_call(const OpInfo& info, const std::string& why) {
  throw CommError(info.describe() + ": " + why);
}

std::vector<int64_t> offsets_of(const OpInfo& info, std::span<const int64_t> counts) {
  std::vector<int64_t> offsets(counts.size() + 1, 0);  // (size + 1)
  for (size_t q = 0; q < counts.size(); ++q) {
    if (counts[q] < 0) bad_call(info, "count " + std::to_string(q) + " is negative");
    offsets[q + 1] = offsets[q] + counts[q];
  }
  return offsets;
}

// The compute stream: the calling thread's current loom stream of `device` (Note [CUDA
// streams] in core/device.h), where the layer kernels and the optimizer run; nullptr is
// the legacy default stream.
cudaStream_t compute_stream(int device) { return static_cast<cudaStream_t>(cuda_current_stream(device)); }

using Clock = std::chrono::steady_clock;

// How much longer than an op's deadline the MPI watchdog waits before it ends the job
// itself (Note [NCCL deadlines]: only if ncclCommAbort or a CUDA call hangs).
constexpr std::chrono::milliseconds kBackstop{30000};
// How long the destructor lets ncclCommFinalize flush before it aborts instead.
constexpr std::chrono::milliseconds kFinalizeGrace{10000};

// Polls with a yield for the first millisecond (a small collective ends in microseconds),
// then sleeps 100 us between polls so a long wait leaves the core to others.
class Backoff {
 public:
  void pause() {
    if (Clock::now() - start_ < std::chrono::milliseconds(1)) {
      std::this_thread::yield();
    } else {
      std::this_thread::sleep_for(std::chrono::microseconds(100));
    }
  }

 private:
  Clock::time_point start_ = Clock::now();
};

}  // namespace

struct NcclCommunicator::Impl {
  class AsyncWork;

  MpiCommunicator* mpi = nullptr;
  int device = 0;
  int rank = 0;
  int size = 1;
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;       // non-blocking; every collective runs here
  cudaEvent_t ready = nullptr;         // recorded on the compute stream before each op
  cudaEvent_t finished = nullptr;      // end of each blocking op on `stream`
  std::vector<cudaEvent_t> spare;      // pool of events for async ops
  Buffer scratch;      // (1) f32 on the device, for barrier()
  int64_t seq = 0;     // collectives issued on this communicator
  std::string killed_by;   // the op whose failure aborted the communicator; empty: alive

  OpInfo next_op(int64_t step, const char* op, const char* reduce, const Tensor& t) {
    OpInfo info;
    info.op = op;
    info.reduce = reduce;
    info.numel = t.numel();
    info.dtype = t.dtype();
    info.seq = ++seq;
    info.step = step;
    info.rank = rank;
    info.size = size;
    info.explainable = false;  // the arrival table follows MPI collectives only
    return info;
  }
  void check_device(const OpInfo& info, const Tensor& t, const char* what) const {
    if (!t.device().is_cuda() || t.device().index != device)
      bad_call(info, std::string(what) + " is on " + t.device().str() +
                         "; this NCCL communicator works on cuda:" + std::to_string(device));
  }
  std::chrono::milliseconds deadline_of(std::chrono::milliseconds timeout) const {
    return timeout.count() > 0 ? timeout : mpi->default_timeout();
  }

  // Aborts the communicator once (ncclCommAbort stops its kernels) and remembers why.
  void abort_comm(const OpInfo& info) {
    if (!killed_by.empty() || comm == nullptr) return;
    killed_by = info.describe();
    ncclResult_t rc = ncclCommAbort(comm);
    if (rc != ncclSuccess && rc != ncclInProgress)
      log::warn("comm", std::string("ncclCommAbort failed: ") + ncclGetErrorString(rc));
  }
  [[noreturn]] void fail(const OpInfo& info, const std::string& why) {
    abort_comm(info);
    throw CommError(info.describe() + ": " + why +
                    "; the NCCL communicator was aborted (ncclCommAbort) and this job cannot "
                    "continue on the GPUs (NCCL_DEBUG=INFO shows NCCL's view)");
  }
  [[noreturn]] void time_out(const OpInfo& info, std::chrono::milliseconds limit) {
    abort_comm(info);
    throw TimeoutError("watchdog: " + info.describe() + " did not finish within " +
                       std::to_string(limit.count()) +
                       " ms; aborted the NCCL communicator (ncclCommAbort). Which ranks are "
                       "missing NCCL does not say (NCCL_DEBUG=INFO shows its view); raise "
                       "comm.timeout_s if this step is legitimately slow");
  }
  void refuse_if_dead(const OpInfo& info) const {
    if (!killed_by.empty())
      throw CommError(info.describe() + ": the NCCL communicator was aborted after " + killed_by +
                      " failed; no collective can run on it any more");
  }
  // Throws (aborting) when NCCL reports an asynchronous error on the communicator.
  void check_async(const OpInfo& info) {
    ncclResult_t state = ncclSuccess;
    ncclResult_t rc = ncclCommGetAsyncError(comm, &state);
    if (rc != ncclSuccess) state = rc;
    if (state != ncclSuccess && state != ncclInProgress)
      fail(info, std::string("NCCL reported ") + ncclGetErrorString(state) + " (" +
                     ncclGetLastError(comm) + ")");
  }
  // The result of an NCCL call on the communicator: ncclInProgress (a non-blocking
  // communicator still setting the call up, connecting to peers) is polled until it
  // settles, under the op's deadline; any failure aborts.
  void settle(const OpInfo& info, std::chrono::milliseconds timeout, ncclResult_t rc, const char* call,
              const char* file, int line) {
    if (rc == ncclSuccess) return;
    const std::string where = std::string(call) + " at " + file + ":" + std::to_string(line);
    if (rc != ncclInProgress) fail(info, where + " returned " + ncclGetErrorString(rc));
    const std::chrono::milliseconds limit = deadline_of(timeout);
    const Clock::time_point deadline = Clock::now() + limit;
    Watchdog::Guard backstop = mpi->watchdog().arm(info, limit + kBackstop);
    for (Backoff backoff;; backoff.pause()) {
      ncclResult_t state = ncclInProgress;
      ncclResult_t q = ncclCommGetAsyncError(comm, &state);
      if (q != ncclSuccess) fail(info, where + ": ncclCommGetAsyncError returned " + ncclGetErrorString(q));
      if (state == ncclSuccess) return;
      if (state != ncclInProgress) fail(info, where + " failed: " + ncclGetErrorString(state));
      if (Clock::now() > deadline) time_out(info, limit);
    }
  }
  // Orders the NCCL stream after everything queued so far on the compute stream.
  void after_compute(const OpInfo& info) {
    refuse_if_dead(info);
    LOOM_CUDA_CHECK(cudaEventRecord(ready, compute_stream(device)));
    LOOM_CUDA_CHECK(cudaStreamWaitEvent(stream, ready, 0));
  }
  // Waits on the host for `event` under the deadline, watching NCCL's async error.
  void wait_for(const OpInfo& info, cudaEvent_t event, std::chrono::milliseconds timeout) {
    refuse_if_dead(info);
    const std::chrono::milliseconds limit = deadline_of(timeout);
    const Clock::time_point deadline = Clock::now() + limit;
    Watchdog::Guard backstop = mpi->watchdog().arm(info, limit + kBackstop);
    for (Backoff backoff;; backoff.pause()) {
      cudaError_t rc = cudaEventQuery(event);
      if (rc == cudaSuccess) return;
      if (rc != cudaErrorNotReady) LOOM_CUDA_CHECK(rc);
      check_async(info);
      if (Clock::now() > deadline) time_out(info, limit);
    }
  }
  // A blocking op's end: record on the NCCL stream and wait for it.
  void finish_blocking(const OpInfo& info, std::chrono::milliseconds timeout) {
    LOOM_CUDA_CHECK(cudaEventRecord(finished, stream));
    wait_for(info, finished, timeout);
  }
  cudaEvent_t take_event() {
    if (!spare.empty()) {
      cudaEvent_t e = spare.back();
      spare.pop_back();
      return e;
    }
    cudaEvent_t e = nullptr;
    LOOM_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
    return e;
  }
  void return_event(cudaEvent_t e) { spare.push_back(e); }
};

// The async allreduce: an event recorded after the collective on the NCCL stream. The
// communicator must outlive it.
class NcclCommunicator::Impl::AsyncWork final : public Work {
 public:
  AsyncWork(Impl& owner, OpInfo info, cudaEvent_t event, std::chrono::milliseconds timeout)
      : owner_(owner), info_(info), event_(event), timeout_(timeout) {}
  ~AsyncWork() override {
    try {
      wait();
    } catch (const Error& e) {
      log::error("comm", std::string("while dropping an unfinished NCCL allreduce: ") + e.what());
    }
    owner_.return_event(event_);
  }
  void wait() override {
    if (finished_) return;
    owner_.wait_for(info_, event_, timeout_);
    finished_ = true;
  }
  bool done() override {
    if (finished_) return true;
    owner_.refuse_if_dead(info_);
    cudaError_t rc = cudaEventQuery(event_);
    if (rc == cudaErrorNotReady) {
      owner_.check_async(info_);
      return false;
    }
    LOOM_CUDA_CHECK(rc);
    finished_ = true;
    return true;
  }

 private:
  Impl& owner_;
  OpInfo info_;
  cudaEvent_t event_;
  std::chrono::milliseconds timeout_;
  bool finished_ = false;
};

NcclCommunicator::NcclCommunicator(MpiCommunicator& mpi, int device_index)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.mpi = &mpi;
  s.device = device_index;
  s.rank = mpi.rank();
  s.size = mpi.size();
  const int visible = cuda_device_count();
  if (device_index < 0 || device_index >= visible)
    throw CommError("NCCL communicator on rank " + std::to_string(s.rank) + ": cuda:" +
                    std::to_string(device_index) + " does not exist (" + std::to_string(visible) +
                    " GPU(s) visible; CUDA_VISIBLE_DEVICES narrows them)");
  DeviceGuard on_device(Device::cuda(device_index));
  ncclUniqueId id{};
  if (s.rank == 0) LOOM_NCCL_CHECK(ncclGetUniqueId(&id));
  mpi.broadcast(Tensor(&id, {static_cast<int64_t>(sizeof(id))}, DType::kU8), 0);
  OpInfo init = s.next_op(step_, "nccl_init", nullptr, Tensor(nullptr, {0}, DType::kU8));
  ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
  config.blocking = 0;   // Note [NCCL deadlines]
  LOOM_NCCL_CALL(s, init, {}, ncclCommInitRankConfig(&s.comm, s.size, id, s.rank, &config));
  LOOM_CUDA_CHECK(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
  LOOM_CUDA_CHECK(cudaEventCreateWithFlags(&s.ready, cudaEventDisableTiming));
  LOOM_CUDA_CHECK(cudaEventCreateWithFlags(&s.finished, cudaEventDisableTiming));
  s.scratch = Buffer(sizeof(float), Device::cuda(device_index));
}

NcclCommunicator::~NcclCommunicator() {
  Impl& s = *impl_;
  try {
    DeviceGuard on_device(Device::cuda(s.device));
    if (s.comm != nullptr && s.killed_by.empty()) {
      // Flush and release (every op was waited for, so the stream is idle unless a kernel
      // hangs on a peer gone for good): that must not hang the exit, so abort after a grace.
      ncclResult_t state = ncclCommFinalize(s.comm);
      const Clock::time_point deadline = Clock::now() + kFinalizeGrace;
      for (Backoff backoff; state == ncclInProgress && Clock::now() < deadline; backoff.pause())
        if (ncclCommGetAsyncError(s.comm, &state) != ncclSuccess) break;
      if (state == ncclSuccess) {
        ncclResult_t rc = ncclCommDestroy(s.comm);
        if (rc != ncclSuccess)
          log::warn("comm", std::string("ncclCommDestroy failed: ") + ncclGetErrorString(rc));
      } else {
        log::warn("comm", std::string("ncclCommFinalize did not finish (") + ncclGetErrorString(state) +
                              "); aborting the NCCL communicator instead");
        ncclCommAbort(s.comm);
      }
    }
    for (cudaEvent_t e : s.spare) cudaEventDestroy(e);
    if (s.ready != nullptr) cudaEventDestroy(s.ready);
    if (s.finished != nullptr) cudaEventDestroy(s.finished);
    if (s.stream != nullptr) cudaStreamDestroy(s.stream);
  } catch (const Error& e) {
    log::warn("comm", std::string("while closing the NCCL communicator: ") + e.what());
  }
}

int NcclCommunicator::rank() const { return impl_->rank; }
int NcclCommunicator::size() const { return impl_->size; }
int NcclCommunicator::device_index() const { return impl_->device; }
void* NcclCommunicator::stream() const { return impl_->stream; }
bool NcclCommunicator::aborted() const { return !impl_->killed_by.empty(); }
// Same ranks in the same order as the MPI communicator that carried the unique id.
MpiCommHandle NcclCommunicator::mpi_comm() const { return impl_->mpi->mpi_comm(); }

std::string NcclCommunicator::library_version() {
  int v = 0;
  LOOM_NCCL_CHECK(ncclGetVersion(&v));
  return "NCCL " + std::to_string(v / 10000) + "." + std::to_string(v / 100 % 100) + "." +
         std::to_string(v % 100);
}

void NcclCommunicator::allreduce(Tensor buf, const CollectiveOptions& opt) {
  Impl& s = *impl_;
  OpInfo info = s.next_op(step_, "allreduce", reduce_op_name(opt.op), buf);
  s.check_device(info, buf, "the buffer");
  if (opt.op == ReduceOp::kAvg && !is_floating(buf.dtype()))
    bad_call(info, std::string("avg needs a floating dtype, got ") + dtype_name(buf.dtype()));
  DeviceGuard on_device(buf.device());
  s.after_compute(info);
  LOOM_NCCL_CALL(s, info, opt.timeout,
                 ncclAllReduce(buf.data(), buf.data(), static_cast<size_t>(buf.numel()),
                               nccl_type(buf.dtype()), nccl_op(opt.op), s.comm, s.stream));
  s.finish_blocking(info, opt.timeout);
}

std::unique_ptr<Work> NcclCommunicator::allreduce_async(Tensor buf, const CollectiveOptions& opt) {
  Impl& s = *impl_;
  OpInfo info = s.next_op(step_, "allreduce_async", reduce_op_name(opt.op), buf);
  s.check_device(info, buf, "the buffer");
  if (opt.op == ReduceOp::kAvg && !is_floating(buf.dtype()))
    bad_call(info, std::string("avg needs a floating dtype, got ") + dtype_name(buf.dtype()));
  DeviceGuard on_device(buf.device());
  s.after_compute(info);   // the bucket's producers, queued before mark_ready()
  LOOM_NCCL_CALL(s, info, opt.timeout,
                 ncclAllReduce(buf.data(), buf.data(), static_cast<size_t>(buf.numel()),
                               nccl_type(buf.dtype()), nccl_op(opt.op), s.comm, s.stream));
  cudaEvent_t event = s.take_event();
  cudaError_t rc = cudaEventRecord(event, s.stream);
  if (rc != cudaSuccess) s.return_event(event);
  LOOM_CUDA_CHECK(rc);
  return std::make_unique<Impl::AsyncWork>(s, info, event, opt.timeout);
}

void NcclCommunicator::broadcast(Tensor buf, int root) {
  Impl& s = *impl_;
  OpInfo info = s.next_op(step_, "broadcast", nullptr, buf);
  s.check_device(info, buf, "the buffer");
  if (root < 0 || root >= s.size) bad_call(info, "root " + std::to_string(root) + " is not a rank");
  DeviceGuard on_device(buf.device());
  s.after_compute(info);
  LOOM_NCCL_CALL(s, info, {}, ncclBroadcast(buf.data(), buf.data(), static_cast<size_t>(buf.numel()),
                                        nccl_type(buf.dtype()), root, s.comm, s.stream));
  s.finish_blocking(info, {});
}

void NcclCommunicator::allgatherv(Tensor mine, Tensor all, std::span<const int64_t> counts) {
  Impl& s = *impl_;
  OpInfo info = s.next_op(step_, "allgatherv", nullptr, all);
  s.check_device(info, mine, "mine");
  s.check_device(info, all, "all");
  if (static_cast<int>(counts.size()) != s.size || mine.dtype() != all.dtype())
    bad_call(info, "counts needs one entry per rank and mine/all one dtype");
  std::vector<int64_t> offsets = offsets_of(info, counts);  // (size + 1)
  if (mine.numel() != counts[static_cast<size_t>(s.rank)] || all.numel() != offsets.back())
    bad_call(info, "mine/all sizes do not match counts");
  DeviceGuard on_device(all.device());
  s.after_compute(info);
  ncclDataType_t type = nccl_type(all.dtype());
  // Each rank's piece is an ncclBroadcast from its owner; grouped so they run together.
  LOOM_NCCL_CHECK(ncclGroupStart());
  for (int q = 0; q < s.size; ++q) {
    size_t count = static_cast<size_t>(counts[static_cast<size_t>(q)]);
    if (count == 0) continue;  // counts are equal on every rank: all skip alike
    char* slot = at(all, offsets[static_cast<size_t>(q)]);
    const void* source = q == s.rank ? mine.data() : slot;
    LOOM_NCCL_CALL(s, info, {}, ncclBroadcast(source, slot, count, type, q, s.comm, s.stream));
  }
  LOOM_NCCL_CALL(s, info, {}, ncclGroupEnd());
  s.finish_blocking(info, {});
}

void NcclCommunicator::alltoallv(Tensor send, std::span<const int64_t> send_counts, Tensor recv,
                                 std::span<const int64_t> recv_counts) {
  Impl& s = *impl_;
  OpInfo info = s.next_op(step_, "alltoallv", nullptr, recv);
  s.check_device(info, send, "send");
  s.check_device(info, recv, "recv");
  if (static_cast<int>(send_counts.size()) != s.size ||
      static_cast<int>(recv_counts.size()) != s.size || send.dtype() != recv.dtype())
    bad_call(info, "send_counts/recv_counts need one entry per rank and send/recv one dtype");
  std::vector<int64_t> send_offsets = offsets_of(info, send_counts);  // (size + 1)
  std::vector<int64_t> recv_offsets = offsets_of(info, recv_counts);  // (size + 1)
  if (send.numel() != send_offsets.back() || recv.numel() != recv_offsets.back())
    bad_call(info, "send/recv sizes do not match the counts");
  DeviceGuard on_device(send.device());
  s.after_compute(info);
  ncclDataType_t type = nccl_type(send.dtype());
  LOOM_NCCL_CHECK(ncclGroupStart());
  for (int q = 0; q < s.size; ++q) {
    size_t i = static_cast<size_t>(q);
    if (send_counts[i] > 0)
      LOOM_NCCL_CALL(s, info, {}, ncclSend(at(send, send_offsets[i]), static_cast<size_t>(send_counts[i]),
                                       type, q, s.comm, s.stream));
    if (recv_counts[i] > 0)
      LOOM_NCCL_CALL(s, info, {}, ncclRecv(at(recv, recv_offsets[i]), static_cast<size_t>(recv_counts[i]),
                                       type, q, s.comm, s.stream));
  }
  LOOM_NCCL_CALL(s, info, {}, ncclGroupEnd());
  s.finish_blocking(info, {});
}

void NcclCommunicator::barrier() {
  Impl& s = *impl_;
  Tensor one = s.scratch.as(DType::kF32);  // (1)
  OpInfo info = s.next_op(step_, "barrier", nullptr, Tensor(nullptr, {0}, DType::kU8));
  DeviceGuard on_device(Device::cuda(s.device));
  s.after_compute(info);
  LOOM_NCCL_CALL(s, info, {}, ncclAllReduce(one.data(), one.data(), 1, ncclFloat32, ncclSum, s.comm, s.stream));
  s.finish_blocking(info, {});
}

void NcclCommunicator::abort(std::string_view why, int exit_code) {
  // Tear NCCL down first so no kernel keeps spinning on a peer that will never come.
  OpInfo info = impl_->next_op(step_, "abort", nullptr, Tensor(nullptr, {0}, DType::kU8));
  impl_->abort_comm(info);
  impl_->mpi->abort(why, exit_code);
}

}  // namespace loom
