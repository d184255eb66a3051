// MpiCommunicator's collectives on host buffers.
//
// Note [Counts above INT_MAX]
// An MPI count is an int. Every collective cuts its buffer into pieces of at most
// mpi_max_chunk_elements() elements (INT_MAX unless a test makes it small) and issues one
// MPI call per piece, in the same order on every rank. allgatherv and alltoallv also need
// int displacements: when a count or the total exceeds the limit they fall back to
// per-source chunked broadcasts (allgatherv) and to pairwise chunked point-to-point rounds
// (alltoallv), which move the same bytes with int-sized calls.
#include <algorithm>
#include <atomic>
#include <climits>
#include <cstring>
#include <numeric>
#include <chrono>
#include <thread>
#include <vector>

#include "core/log.h"
#include "dist/mpi_check.h"
#include "dist/mpi_impl.h"
#include "dist/mpi_testing.h"

namespace loom {

namespace detail {
namespace {
std::atomic<int64_t> g_max_chunk{INT_MAX};
}  // namespace

void set_mpi_max_chunk_elements(int64_t n) { g_max_chunk = n > 0 && n < INT_MAX ? n : INT_MAX; }
int64_t mpi_max_chunk_elements() { return g_max_chunk.load(std::memory_order_relaxed); }
}  // namespace detail

namespace {

MPI_Datatype mpi_type(DType dtype) {
  switch (dtype) {
    case DType::kF32: return MPI_FLOAT;
    case DType::kF64: return MPI_DOUBLE;
    case DType::kI32: return MPI_INT32_T;
    case DType::kI64: return MPI_INT64_T;
    case DType::kU8: return MPI_UINT8_T;
    case DType::kU64: return MPI_UINT64_T;
    case DType::kBF16:  // moved as raw 16-bit words; never reduced
    case DType::kF16: return MPI_UINT16_T;
  }
  LOOM_ASSERT(false, "unknown dtype");
  return MPI_DATATYPE_NULL;
}

MPI_Op mpi_op(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum:
    case ReduceOp::kAvg: return MPI_SUM;  // kAvg divides after the sum
    case ReduceOp::kMax: return MPI_MAX;
    case ReduceOp::kMin: return MPI_MIN;
  }
  return MPI_OP_NULL;
}

bool is_floating(DType dtype) { return dtype == DType::kF32 || dtype == DType::kF64; }

char* at(Tensor t, int64_t element) {
  return static_cast<char*>(t.data()) + static_cast<size_t>(element) * dtype_size(t.dtype());
}

// Calls fn(offset, count) for consecutive pieces of at most the chunk limit.
template <class Fn>
void for_each_piece(int64_t numel, Fn&& fn) {
  const int64_t limit = detail::mpi_max_chunk_elements();
  for (int64_t offset = 0; offset < numel; offset += limit)
    fn(offset, static_cast<int>(std::min(limit, numel - offset)));
}

[[noreturn]] void bad_call(const OpInfo& info, const std::string& why) {
  throw CommError(info.describe() + ": " + why);
}

void check_host(const OpInfo& info, const Tensor& t, const char* what) {
  if (!t.device().is_cpu())
    bad_call(info, std::string(what) + " is on " + t.device().str() +
                       "; MpiCommunicator works on host memory (use comm_for(device))");
}

void check_reduction(const OpInfo& info, DType dtype, ReduceOp op) {
  if (dtype == DType::kBF16 || dtype == DType::kF16)
    bad_call(info, std::string("cannot reduce ") + dtype_name(dtype) +
                       " on the host; reduce in f32 (bf16/f16 are for broadcast and gathers)");
  if (op == ReduceOp::kAvg && !is_floating(dtype))
    bad_call(info, std::string("avg needs a floating dtype, got ") + dtype_name(dtype) +
                       "; use sum and divide yourself");
}

void divide(Tensor buf, int by) {
  if (buf.dtype() == DType::kF32) {
    float* p = static_cast<float*>(buf.data());  // (numel)
    const float scale = 1.0f / static_cast<float>(by);
    for (int64_t i = 0; i < buf.numel(); ++i) p[i] *= scale;
  } else {
    double* p = static_cast<double*>(buf.data());  // (numel)
    const double scale = 1.0 / static_cast<double>(by);
    for (int64_t i = 0; i < buf.numel(); ++i) p[i] *= scale;
  }
}

// Exclusive prefix sums of counts, checked non-negative: (size + 1), last is the total.
std::vector<int64_t> offsets_of(const OpInfo& info, std::span<const int64_t> counts,
                                const char* what) {
  std::vector<int64_t> offsets(counts.size() + 1, 0);
  for (size_t q = 0; q < counts.size(); ++q) {
    if (counts[q] < 0)
      bad_call(info, std::string(what) + "[" + std::to_string(q) + "] is negative (" +
                         std::to_string(counts[q]) + ")");
    offsets[q + 1] = offsets[q] + counts[q];
  }
  return offsets;
}

bool fits_int(std::span<const int64_t> counts, int64_t total) {
  const int64_t limit = detail::mpi_max_chunk_elements();
  return total <= limit &&
         std::all_of(counts.begin(), counts.end(), [&](int64_t c) { return c <= limit; });
}

std::vector<int> to_int(std::span<const int64_t> values) {
  return std::vector<int>(values.begin(), values.end());
}

// The async allreduce: one MPI_Iallreduce per piece, completed by wait() or done().
class MpiWork final : public Work {
 public:
  MpiWork(OpInfo info, Tensor buf, bool average, std::chrono::milliseconds timeout,
          Watchdog& watchdog, int size)
      : info_(info), buf_(buf), average_(average), timeout_(timeout), watchdog_(watchdog),
        size_(size) {}
  ~MpiWork() override;

  void start(MPI_Comm comm, MPI_Op op) {
    MPI_Datatype type = mpi_type(buf_.dtype());
    for_each_piece(buf_.numel(), [&](int64_t offset, int count) {
      requests_.push_back(MPI_REQUEST_NULL);
      LOOM_MPI_CHECK_OP(info_, MPI_Iallreduce(MPI_IN_PLACE, at(buf_, offset), count, type, op,
                                              comm, &requests_.back()));
    });
  }
  void wait() override {
    if (finished_) return;
    Watchdog::Guard guard = watchdog_.arm(info_, timeout_);
    LOOM_MPI_CHECK_OP(info_, MPI_Waitall(static_cast<int>(requests_.size()), requests_.data(),
                                         MPI_STATUSES_IGNORE));
    finish();
  }
  bool done() override {
    if (finished_) return true;
    int flag = 0;
    LOOM_MPI_CHECK_OP(info_, MPI_Testall(static_cast<int>(requests_.size()), requests_.data(),
                                         &flag, MPI_STATUSES_IGNORE));
    if (flag != 0) finish();
    return finished_;
  }

 private:
  void finish() {
    finished_ = true;
    if (average_) divide(buf_, size_);
  }
  OpInfo info_;
  Tensor buf_;
  bool average_;
  std::chrono::milliseconds timeout_;
  Watchdog& watchdog_;
  int size_;
  std::vector<MPI_Request> requests_;  // one per piece
  bool finished_ = false;
};

MpiWork::~MpiWork() {
  // MPI still writes into the buffer until the requests complete: never drop them.
  if (finished_) return;
  try {
    wait();
  } catch (const Error& e) {
    log::error("comm", std::string("while dropping an unfinished async allreduce: ") + e.what());
  }
}

}  // namespace

OpInfo MpiCommunicator::Impl::next_op(int64_t step, const char* op, const char* reduce,
                                     const Tensor& t) {
  OpInfo info;
  info.op = op;
  info.reduce = reduce;
  info.numel = t.numel();
  info.dtype = t.dtype();
  info.seq = ++seq;
  info.step = step;
  info.rank = rank;
  info.size = size;
  return info;
}

Watchdog::Guard MpiCommunicator::Impl::enter(const OpInfo& info,
                                             std::chrono::milliseconds timeout) {
  Watchdog::Guard guard = watchdog->arm(info, timeout);
  if (arrivals) arrivals->record(info.seq);
  return guard;
}

void MpiCommunicator::allreduce(Tensor buf, const CollectiveOptions& opt) {
  Impl& s = *impl_;
  OpInfo info = s.next_op(step_, "allreduce", reduce_op_name(opt.op), buf);
  check_host(info, buf, "the buffer");
  check_reduction(info, buf.dtype(), opt.op);
  Watchdog::Guard guard = s.enter(info, opt.timeout);
  MPI_Datatype type = mpi_type(buf.dtype());
  MPI_Op op = mpi_op(opt.op);
  for_each_piece(buf.numel(), [&](int64_t offset, int count) {
    if (!opt.idle_wait) {
      LOOM_MPI_CHECK_OP(info, MPI_Allreduce(MPI_IN_PLACE, at(buf, offset), count, type, op, s.comm));
      return;
    }
    MPI_Request request = MPI_REQUEST_NULL;
    LOOM_MPI_CHECK_OP(info, MPI_Iallreduce(MPI_IN_PLACE, at(buf, offset), count, type, op, s.comm, &request));
    for (int flag = 0;;) {
      LOOM_MPI_CHECK_OP(info, MPI_Test(&request, &flag, MPI_STATUS_IGNORE));
      if (flag != 0) break;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  if (opt.op == ReduceOp::kAvg) divide(buf, s.size);
}

std::unique_ptr<Work> MpiCommunicator::allreduce_async(Tensor buf, const CollectiveOptions& opt) {
  Impl& s = *impl_;
  OpInfo info =
      s.next_op(step_, "allreduce_async", reduce_op_name(opt.op), buf);
  check_host(info, buf, "the buffer");
  check_reduction(info, buf.dtype(), opt.op);
  if (s.arrivals) s.arrivals->record(info.seq);
  auto work = std::make_unique<MpiWork>(info, buf, opt.op == ReduceOp::kAvg, opt.timeout,
                                        *s.watchdog, s.size);
  work->start(s.comm, mpi_op(opt.op));
  return work;
}

void MpiCommunicator::broadcast(Tensor buf, int root) {
  Impl& s = *impl_;
  OpInfo info = s.next_op(step_, "broadcast", nullptr, buf);
  check_host(info, buf, "the buffer");
  if (root < 0 || root >= s.size)
    bad_call(info, "root " + std::to_string(root) + " is not a rank of a world of " +
                       std::to_string(s.size));
  Watchdog::Guard guard = s.enter(info, {});
  MPI_Datatype type = mpi_type(buf.dtype());
  for_each_piece(buf.numel(), [&](int64_t offset, int count) {
    LOOM_MPI_CHECK_OP(info, MPI_Bcast(at(buf, offset), count, type, root, s.comm));
  });
}

void MpiCommunicator::allgatherv(Tensor mine, Tensor all, std::span<const int64_t> counts) {
  Impl& s = *impl_;
  OpInfo info = s.next_op(step_, "allgatherv", nullptr, all);
  check_host(info, mine, "mine");
  check_host(info, all, "all");
  if (static_cast<int>(counts.size()) != s.size)
    bad_call(info, "counts has " + std::to_string(counts.size()) + " entries for " +
                       std::to_string(s.size) + " ranks");
  if (mine.dtype() != all.dtype())
    bad_call(info, std::string("mine is ") + dtype_name(mine.dtype()) + " but all is " +
                       dtype_name(all.dtype()));
  std::vector<int64_t> offsets = offsets_of(info, counts, "counts");  // (size + 1)
  const int64_t total = offsets.back();
  if (mine.numel() != counts[static_cast<size_t>(s.rank)] || all.numel() != total)
    bad_call(info, "mine has " + std::to_string(mine.numel()) + " elements and all " +
                       std::to_string(all.numel()) + ", but counts say " +
                       std::to_string(counts[static_cast<size_t>(s.rank)]) + " and " +
                       std::to_string(total));
  Watchdog::Guard guard = s.enter(info, {});
  MPI_Datatype type = mpi_type(all.dtype());
  char* my_slot = at(all, offsets[static_cast<size_t>(s.rank)]);
  const bool in_place = mine.data() == my_slot;
  if (fits_int(counts, total)) {
    std::vector<int> icounts = to_int(counts);
    std::vector<int> idispls = to_int(std::span<const int64_t>(offsets).first(counts.size()));
    LOOM_MPI_CHECK_OP(info, MPI_Allgatherv(in_place ? MPI_IN_PLACE : mine.data(),
                                           icounts[static_cast<size_t>(s.rank)], type, all.data(),
                                           icounts.data(), idispls.data(), type, s.comm));
    return;
  }
  // Note [Counts above INT_MAX]: each rank's piece is broadcast from its owner.
  if (!in_place && mine.numel() > 0) std::memmove(my_slot, mine.data(), mine.nbytes());
  for (int q = 0; q < s.size; ++q) {
    Tensor piece = all.slice(offsets[static_cast<size_t>(q)], counts[static_cast<size_t>(q)]);
    for_each_piece(piece.numel(), [&](int64_t offset, int count) {
      LOOM_MPI_CHECK_OP(info, MPI_Bcast(at(piece, offset), count, type, q, s.comm));
    });
  }
}

namespace {
// One pairwise round of the chunked alltoallv: send to `to`, receive from `from`.
void exchange_pieces(const OpInfo& info, MPI_Comm comm, Tensor out, int to, Tensor in,
                     int from) {
  constexpr int kTag = 7301;
  MPI_Datatype type = mpi_type(out.dtype());
  std::vector<MPI_Request> requests;
  for_each_piece(in.numel(), [&](int64_t offset, int count) {
    requests.push_back(MPI_REQUEST_NULL);
    LOOM_MPI_CHECK_OP(info, MPI_Irecv(at(in, offset), count, type, from, kTag, comm,
                                      &requests.back()));
  });
  for_each_piece(out.numel(), [&](int64_t offset, int count) {
    requests.push_back(MPI_REQUEST_NULL);
    LOOM_MPI_CHECK_OP(info, MPI_Isend(at(out, offset), count, type, to, kTag, comm,
                                      &requests.back()));
  });
  LOOM_MPI_CHECK_OP(info, MPI_Waitall(static_cast<int>(requests.size()), requests.data(),
                                      MPI_STATUSES_IGNORE));
}
}  // namespace

void MpiCommunicator::alltoallv(Tensor send, std::span<const int64_t> send_counts, Tensor recv,
                                std::span<const int64_t> recv_counts) {
  Impl& s = *impl_;
  OpInfo info = s.next_op(step_, "alltoallv", nullptr, recv);
  check_host(info, send, "send");
  check_host(info, recv, "recv");
  if (static_cast<int>(send_counts.size()) != s.size ||
      static_cast<int>(recv_counts.size()) != s.size)
    bad_call(info, "send_counts and recv_counts need " + std::to_string(s.size) +
                       " entries, got " + std::to_string(send_counts.size()) + " and " +
                       std::to_string(recv_counts.size()));
  if (send.dtype() != recv.dtype())
    bad_call(info, std::string("send is ") + dtype_name(send.dtype()) + " but recv is " +
                       dtype_name(recv.dtype()));
  std::vector<int64_t> send_offsets = offsets_of(info, send_counts, "send_counts");  // (size+1)
  std::vector<int64_t> recv_offsets = offsets_of(info, recv_counts, "recv_counts");  // (size+1)
  if (send.numel() != send_offsets.back() || recv.numel() != recv_offsets.back())
    bad_call(info, "send has " + std::to_string(send.numel()) + " elements and recv " +
                       std::to_string(recv.numel()) + ", but the counts add up to " +
                       std::to_string(send_offsets.back()) + " and " +
                       std::to_string(recv_offsets.back()));
  Watchdog::Guard guard = s.enter(info, {});
  if (fits_int(send_counts, send_offsets.back()) && fits_int(recv_counts, recv_offsets.back())) {
    MPI_Datatype type = mpi_type(send.dtype());
    std::vector<int> scounts = to_int(send_counts);
    std::vector<int> rcounts = to_int(recv_counts);
    std::vector<int> sdispls = to_int(std::span<const int64_t>(send_offsets).first(send_counts.size()));
    std::vector<int> rdispls = to_int(std::span<const int64_t>(recv_offsets).first(recv_counts.size()));
    LOOM_MPI_CHECK_OP(info, MPI_Alltoallv(send.data(), scounts.data(), sdispls.data(), type,
                                          recv.data(), rcounts.data(), rdispls.data(), type,
                                          s.comm));
    return;
  }
  // Note [Counts above INT_MAX]: round k sends to rank+k and receives from rank-k.
  auto part = [](Tensor t, const std::vector<int64_t>& offsets, int q) {
    size_t i = static_cast<size_t>(q);
    return t.slice(offsets[i], offsets[i + 1] - offsets[i]);
  };
  Tensor self_out = part(send, send_offsets, s.rank);
  Tensor self_in = part(recv, recv_offsets, s.rank);
  if (self_out.numel() != self_in.numel())
    bad_call(info, "this rank sends itself " + std::to_string(self_out.numel()) +
                       " elements but expects " + std::to_string(self_in.numel()));
  if (self_out.numel() > 0) std::memmove(self_in.data(), self_out.data(), self_out.nbytes());
  for (int k = 1; k < s.size; ++k) {
    int to = (s.rank + k) % s.size;
    int from = (s.rank - k + s.size) % s.size;
    exchange_pieces(info, s.comm, part(send, send_offsets, to), to,
                    part(recv, recv_offsets, from), from);
  }
}

void MpiCommunicator::barrier() {
  Impl& s = *impl_;
  OpInfo info = s.next_op(step_, "barrier", nullptr,
                          Tensor(nullptr, {0}, DType::kU8));
  Watchdog::Guard guard = s.enter(info, {});
  LOOM_MPI_CHECK_OP(info, MPI_Barrier(s.comm));
}

}  // namespace loom
