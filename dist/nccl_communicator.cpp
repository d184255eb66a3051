// NcclCommunicator: NCCL collectives on device buffers, with the MPI world for set-up
// (unique id), deadlines (its Watchdog) and ending the job (MPI_Abort).
#include "dist/nccl_communicator.h"

#include <cuda_runtime.h>
#include <nccl.h>

#include <string>
#include <vector>

#include "core/buffer.h"
#include "core/error.h"
#include "core/log.h"
#include "dist/mpi_communicator.h"
#include "dist/watchdog.h"

// Every NCCL and CUDA return code goes through these (STYLE.md rule 7).
#define LOOM_NCCL_CHECK(expr)                                                              \
  do {                                                                                     \
    ncclResult_t loom_nccl_rc_ = (expr);                                                   \
    if (loom_nccl_rc_ != ncclSuccess) [[unlikely]]                                         \
      ::loom::detail::throw_library_error("NCCL", #expr, __FILE__, __LINE__,               \
                                          ncclGetErrorString(loom_nccl_rc_));              \
  } while (0)

#define LOOM_CUDA_CHECK(expr)                                                              \
  do {                                                                                     \
    cudaError_t loom_cuda_rc_ = (expr);                                                    \
    if (loom_cuda_rc_ != cudaSuccess) [[unlikely]]                                         \
      ::loom::detail::throw_library_error("CUDA", #expr, __FILE__, __LINE__,               \
                                          cudaGetErrorString(loom_cuda_rc_));              \
  } while (0)

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

// The async allreduce: an event recorded after the collective on the NCCL stream.
class NcclWork final : public Work {
 public:
  NcclWork(OpInfo info, cudaEvent_t event, std::chrono::milliseconds timeout, Watchdog& dog)
      : info_(info), event_(event), timeout_(timeout), watchdog_(dog) {}
  ~NcclWork() override {
    try {
      wait();
    } catch (const Error& e) {
      log::error("comm", std::string("while dropping an unfinished NCCL allreduce: ") + e.what());
    }
    cudaEventDestroy(event_);  // a failure here leaves nothing to clean up
  }
  void wait() override {
    if (finished_) return;
    Watchdog::Guard guard = watchdog_.arm(info_, timeout_);
    LOOM_CUDA_CHECK(cudaEventSynchronize(event_));
    finished_ = true;
  }
  bool done() override {
    if (finished_) return true;
    cudaError_t rc = cudaEventQuery(event_);
    if (rc == cudaErrorNotReady) return false;
    LOOM_CUDA_CHECK(rc);
    finished_ = true;
    return true;
  }

 private:
  OpInfo info_;
  cudaEvent_t event_;
  std::chrono::milliseconds timeout_;
  Watchdog& watchdog_;
  bool finished_ = false;
};

}  // namespace

struct NcclCommunicator::Impl {
  MpiCommunicator* mpi = nullptr;
  int device = 0;
  int rank = 0;
  int size = 1;
  ncclComm_t comm = nullptr;
  cudaStream_t stream = nullptr;
  Buffer scratch;      // (1) f32 on the device, for barrier()
  int64_t seq = 0;     // collectives issued on this communicator

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
  // Waits for the stream under the watchdog deadline.
  void synchronize(const OpInfo& info, std::chrono::milliseconds timeout) {
    Watchdog::Guard guard = mpi->watchdog().arm(info, timeout);
    LOOM_CUDA_CHECK(cudaStreamSynchronize(stream));
  }
};

NcclCommunicator::NcclCommunicator(MpiCommunicator& mpi, int device_index)
    : impl_(std::make_unique<Impl>()) {
  Impl& s = *impl_;
  s.mpi = &mpi;
  s.device = device_index;
  s.rank = mpi.rank();
  s.size = mpi.size();
  DeviceGuard on_device(Device::cuda(device_index));
  ncclUniqueId id{};
  if (s.rank == 0) LOOM_NCCL_CHECK(ncclGetUniqueId(&id));
  mpi.broadcast(Tensor(&id, {static_cast<int64_t>(sizeof(id))}, DType::kU8), 0);
  OpInfo init = s.next_op(step_, "nccl_init", nullptr, Tensor(nullptr, {0}, DType::kU8));
  {
    Watchdog::Guard guard = mpi.watchdog().arm(init, {});
    LOOM_NCCL_CHECK(ncclCommInitRank(&s.comm, s.size, id, s.rank));
  }
  LOOM_CUDA_CHECK(cudaStreamCreate(&s.stream));
  s.scratch = Buffer(sizeof(float), Device::cuda(device_index));
}

NcclCommunicator::~NcclCommunicator() {
  Impl& s = *impl_;
  DeviceGuard on_device(Device::cuda(s.device));
  if (s.stream != nullptr) cudaStreamSynchronize(s.stream);
  if (s.comm != nullptr) {
    ncclResult_t rc = ncclCommDestroy(s.comm);
    if (rc != ncclSuccess)
      log::warn("comm", std::string("ncclCommDestroy failed: ") + ncclGetErrorString(rc));
  }
  if (s.stream != nullptr) cudaStreamDestroy(s.stream);
}

int NcclCommunicator::rank() const { return impl_->rank; }
int NcclCommunicator::size() const { return impl_->size; }
int NcclCommunicator::device_index() const { return impl_->device; }
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
  LOOM_NCCL_CHECK(ncclAllReduce(buf.data(), buf.data(), static_cast<size_t>(buf.numel()),
                                nccl_type(buf.dtype()), nccl_op(opt.op), s.comm, s.stream));
  s.synchronize(info, opt.timeout);
}

std::unique_ptr<Work> NcclCommunicator::allreduce_async(Tensor buf, const CollectiveOptions& opt) {
  Impl& s = *impl_;
  OpInfo info = s.next_op(step_, "allreduce_async", reduce_op_name(opt.op), buf);
  s.check_device(info, buf, "the buffer");
  if (opt.op == ReduceOp::kAvg && !is_floating(buf.dtype()))
    bad_call(info, std::string("avg needs a floating dtype, got ") + dtype_name(buf.dtype()));
  DeviceGuard on_device(buf.device());
  LOOM_NCCL_CHECK(ncclAllReduce(buf.data(), buf.data(), static_cast<size_t>(buf.numel()),
                                nccl_type(buf.dtype()), nccl_op(opt.op), s.comm, s.stream));
  cudaEvent_t event = nullptr;
  LOOM_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  cudaError_t rc = cudaEventRecord(event, s.stream);
  if (rc != cudaSuccess) cudaEventDestroy(event);
  LOOM_CUDA_CHECK(rc);
  return std::make_unique<NcclWork>(info, event, opt.timeout, s.mpi->watchdog());
}

void NcclCommunicator::broadcast(Tensor buf, int root) {
  Impl& s = *impl_;
  OpInfo info = s.next_op(step_, "broadcast", nullptr, buf);
  s.check_device(info, buf, "the buffer");
  if (root < 0 || root >= s.size) bad_call(info, "root " + std::to_string(root) + " is not a rank");
  DeviceGuard on_device(buf.device());
  LOOM_NCCL_CHECK(ncclBroadcast(buf.data(), buf.data(), static_cast<size_t>(buf.numel()),
                                nccl_type(buf.dtype()), root, s.comm, s.stream));
  s.synchronize(info, {});
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
  ncclDataType_t type = nccl_type(all.dtype());
  // Each rank's piece is an ncclBroadcast from its owner; grouped so they run together.
  LOOM_NCCL_CHECK(ncclGroupStart());
  for (int q = 0; q < s.size; ++q) {
    size_t count = static_cast<size_t>(counts[static_cast<size_t>(q)]);
    if (count == 0) continue;  // counts are equal on every rank: all skip alike
    char* slot = at(all, offsets[static_cast<size_t>(q)]);
    const void* source = q == s.rank ? mine.data() : slot;
    LOOM_NCCL_CHECK(ncclBroadcast(source, slot, count, type, q, s.comm, s.stream));
  }
  LOOM_NCCL_CHECK(ncclGroupEnd());
  s.synchronize(info, {});
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
  ncclDataType_t type = nccl_type(send.dtype());
  LOOM_NCCL_CHECK(ncclGroupStart());
  for (int q = 0; q < s.size; ++q) {
    size_t i = static_cast<size_t>(q);
    if (send_counts[i] > 0)
      LOOM_NCCL_CHECK(ncclSend(at(send, send_offsets[i]), static_cast<size_t>(send_counts[i]),
                               type, q, s.comm, s.stream));
    if (recv_counts[i] > 0)
      LOOM_NCCL_CHECK(ncclRecv(at(recv, recv_offsets[i]), static_cast<size_t>(recv_counts[i]),
                               type, q, s.comm, s.stream));
  }
  LOOM_NCCL_CHECK(ncclGroupEnd());
  s.synchronize(info, {});
}

void NcclCommunicator::barrier() {
  Impl& s = *impl_;
  Tensor one = s.scratch.as(DType::kF32);  // (1)
  OpInfo info = s.next_op(step_, "barrier", nullptr, Tensor(nullptr, {0}, DType::kU8));
  DeviceGuard on_device(Device::cuda(s.device));
  LOOM_NCCL_CHECK(ncclAllReduce(one.data(), one.data(), 1, ncclFloat32, ncclSum, s.comm, s.stream));
  s.synchronize(info, {});
}

void NcclCommunicator::abort(std::string_view why, int exit_code) {
  // Tear NCCL down first so no kernel keeps spinning on a peer that will never come.
  ncclResult_t rc = impl_->comm != nullptr ? ncclCommAbort(impl_->comm) : ncclSuccess;
  if (rc != ncclSuccess)
    log::warn("comm", std::string("ncclCommAbort failed: ") + ncclGetErrorString(rc));
  impl_->mpi->abort(why, exit_code);
}

}  // namespace loom
