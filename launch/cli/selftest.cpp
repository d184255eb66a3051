#include "launch/cli/selftest.h"

#include <chrono>
#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "core/buffer.h"
#include "core/log.h"
#include "dist/mpi_communicator.h"
#include "launch/monitor/run_monitor.h"
#include "launch/run/session.h"
#include "launch/run/signals.h"

namespace loom {
namespace {

[[noreturn]] void mismatch(const char* what, int64_t step, int rank, int64_t index, double expected,
                           double actual) {
  throw DataError(std::string("selftest: ") + what + " gave a wrong result at step " +
                  std::to_string(step) + " on rank " + std::to_string(rank) + ", element " +
                  std::to_string(index) + ": expected " + std::to_string(expected) + ", got " +
                  std::to_string(actual));
}

// Message sizes in elements of 8 bytes, cycled through by step: empty, tiny, odd, and
// powers of 4 up to max_bytes.
std::vector<int64_t> message_sizes(int64_t max_bytes) {
  int64_t max_elems = max_bytes / 8;
  std::vector<int64_t> sizes{0, 1, 7, 1001};
  for (int64_t n = 4096; n < max_elems; n *= 4) sizes.push_back(n);
  sizes.push_back(max_elems);
  std::vector<int64_t> kept;
  for (int64_t n : sizes)
    if (n <= max_elems) kept.push_back(n);
  return kept;
}

// All buffers are allocated once, at the largest size (STYLE: no allocation in the loop).
struct Buffers {
  Buffers(int64_t max_elems, int world)
      : i64(static_cast<size_t>(max_elems) * 8), f64(static_cast<size_t>(max_elems) * 8),
        i32(static_cast<size_t>(max_elems) * 4), f32(static_cast<size_t>(max_elems) * 4),
        gather_mine(kMaxPiece * 8), gather_all(static_cast<size_t>(kMaxPiece * world) * 8),
        a2a_send(static_cast<size_t>(kMaxPiece * world) * 8),
        a2a_recv(static_cast<size_t>(kMaxPiece * world) * 8) {}
  static constexpr int64_t kMaxPiece = 97;   // per-rank piece of the v-collectives
  Buffer i64, f64, i32, f32, gather_mine, gather_all, a2a_send, a2a_recv;
};

class SelfTest {
 public:
  SelfTest(Communicator& comm, int64_t max_bytes)
      : comm_(comm), rank_(comm.rank()), size_(comm.size()), sizes_(message_sizes(max_bytes)),
        buffers_(sizes_.back(), comm.size()) {}

  // One step: every collective once. Returns the bytes this rank put on the wire (roughly).
  int64_t step(int64_t step) {
    int64_t n = sizes_[static_cast<size_t>(step) % sizes_.size()];
    check_allreduce_sum(step, n);
    check_allreduce_avg(step, n);
    check_allreduce_max_min(step, n);
    check_allreduce_async(step, n);
    check_broadcast(step, n);
    check_allgatherv(step);
    check_alltoallv(step);
    comm_.barrier();
    return n * 8 * 6;
  }

 private:
  static int64_t pattern(int64_t i, int64_t step) { return (i + step) % 1009; }
  int64_t rank_sum() const { return int64_t{size_} * (size_ + 1) / 2; }   // sum of (r + 1)

  void check_allreduce_sum(int64_t step, int64_t n) {
    int64_t* x = static_cast<int64_t*>(buffers_.i64.data());
    for (int64_t i = 0; i < n; ++i) x[i] = (rank_ + 1) * pattern(i, step);
    comm_.allreduce(Tensor::of(x, n), ReduceOp::kSum);
    for (int64_t i = 0; i < n; ++i) {
      int64_t want = rank_sum() * pattern(i, step);
      if (x[i] != want) mismatch("allreduce(sum, i64)", step, rank_, i, double(want), double(x[i]));
    }
  }

  void check_allreduce_avg(int64_t step, int64_t n) {
    double* x = static_cast<double*>(buffers_.f64.data());
    for (int64_t i = 0; i < n; ++i) x[i] = double((rank_ + 1) * pattern(i, step));
    comm_.allreduce(Tensor::of(x, n), ReduceOp::kAvg);
    for (int64_t i = 0; i < n; ++i) {
      double want = double(rank_sum() * pattern(i, step)) / size_;
      if (std::fabs(x[i] - want) > 1e-12 * std::fabs(want))
        mismatch("allreduce(avg, f64)", step, rank_, i, want, x[i]);
    }
  }

  void check_allreduce_max_min(int64_t step, int64_t n) {
    int32_t* x = static_cast<int32_t*>(buffers_.i32.data());
    for (int64_t i = 0; i < n; ++i) x[i] = int32_t(rank_ * 7 + pattern(i, step) % 5);
    comm_.allreduce(Tensor::of(x, n), ReduceOp::kMax);
    for (int64_t i = 0; i < n; ++i) {
      int32_t want = int32_t((size_ - 1) * 7 + pattern(i, step) % 5);
      if (x[i] != want) mismatch("allreduce(max, i32)", step, rank_, i, want, x[i]);
    }
    for (int64_t i = 0; i < n; ++i) x[i] = int32_t(rank_ * 7 + pattern(i, step) % 5);
    comm_.allreduce(Tensor::of(x, n), ReduceOp::kMin);
    for (int64_t i = 0; i < n; ++i) {
      int32_t want = int32_t(pattern(i, step) % 5);
      if (x[i] != want) mismatch("allreduce(min, i32)", step, rank_, i, want, x[i]);
    }
  }

  // Two halves in flight at once; integers below 2^24 are exact in float32.
  void check_allreduce_async(int64_t step, int64_t n) {
    float* x = static_cast<float*>(buffers_.f32.data());
    for (int64_t i = 0; i < n; ++i) x[i] = float((rank_ + 1) * pattern(i, step));
    int64_t half = n / 2;
    Tensor all = Tensor::of(x, n);
    auto first = comm_.allreduce_async(all.slice(0, half), CollectiveOptions{});
    auto second = comm_.allreduce_async(all.slice(half, n - half), CollectiveOptions{});
    second->wait();
    first->wait();
    for (int64_t i = 0; i < n; ++i) {
      float want = float(rank_sum() * pattern(i, step));
      if (x[i] != want) mismatch("allreduce_async(sum, f32)", step, rank_, i, want, x[i]);
    }
  }

  void check_broadcast(int64_t step, int64_t n) {
    int root = int(step % size_);
    int64_t* x = static_cast<int64_t*>(buffers_.i64.data());
    for (int64_t i = 0; i < n; ++i) x[i] = rank_ == root ? 3 * i + step : -1;
    comm_.broadcast(Tensor::of(x, n), root);
    for (int64_t i = 0; i < n; ++i)
      if (x[i] != 3 * i + step) mismatch("broadcast", step, rank_, i, double(3 * i + step), double(x[i]));
  }

  // Uneven pieces, some empty: rank r contributes (r * 37 + step) % 97 elements.
  void check_allgatherv(int64_t step) {
    std::vector<int64_t> counts(static_cast<size_t>(size_));
    int64_t total = 0;
    for (int r = 0; r < size_; ++r) total += counts[size_t(r)] = (r * 37 + step) % Buffers::kMaxPiece;
    int64_t* mine = static_cast<int64_t*>(buffers_.gather_mine.data());
    int64_t* all = static_cast<int64_t*>(buffers_.gather_all.data());
    int64_t my_count = counts[size_t(rank_)];
    for (int64_t i = 0; i < my_count; ++i) mine[i] = rank_ * 100000 + i;
    comm_.allgatherv(Tensor::of(mine, my_count), Tensor::of(all, total), counts);
    int64_t at = 0;
    for (int r = 0; r < size_; ++r)
      for (int64_t i = 0; i < counts[size_t(r)]; ++i, ++at)
        if (all[at] != r * 100000 + i) mismatch("allgatherv", step, rank_, at, double(r * 100000 + i), double(all[at]));
  }

  // Rank p sends (p + 2q + step) % 13 elements to rank q, valued p * 10^6 + q * 10^3 + i.
  void check_alltoallv(int64_t step) {
    auto count = [&](int from, int to) { return int64_t((from + 2 * to + step) % 13); };
    std::vector<int64_t> send_counts(static_cast<size_t>(size_)), recv_counts(static_cast<size_t>(size_));
    int64_t send_total = 0, recv_total = 0;
    for (int q = 0; q < size_; ++q) {
      send_total += send_counts[size_t(q)] = count(rank_, q);
      recv_total += recv_counts[size_t(q)] = count(q, rank_);
    }
    int64_t* send = static_cast<int64_t*>(buffers_.a2a_send.data());
    int64_t* recv = static_cast<int64_t*>(buffers_.a2a_recv.data());
    int64_t at = 0;
    for (int q = 0; q < size_; ++q)
      for (int64_t i = 0; i < send_counts[size_t(q)]; ++i) send[at++] = rank_ * 1000000 + q * 1000 + i;
    comm_.alltoallv(Tensor::of(send, send_total), send_counts, Tensor::of(recv, recv_total), recv_counts);
    at = 0;
    for (int p = 0; p < size_; ++p)
      for (int64_t i = 0; i < recv_counts[size_t(p)]; ++i, ++at) {
        int64_t want = p * 1000000 + rank_ * 1000 + i;
        if (recv[at] != want) mismatch("alltoallv", step, rank_, at, double(want), double(recv[at]));
      }
  }

  Communicator& comm_;
  int rank_;
  int size_;
  std::vector<int64_t> sizes_;
  Buffers buffers_;
};

MonitorOptions monitor_options(const Session& session) {
  const Config& c = session.config();
  MonitorOptions o;
  o.run_dir = session.run_dir();
  o.total_steps = c.selftest.steps;
  o.unit = "B";
  o.progress_interval_s = c.progress.interval_s;
  o.bar = c.progress.bar == "on" ? MonitorOptions::Bar::kOn
          : c.progress.bar == "off" ? MonitorOptions::Bar::kOff : MonitorOptions::Bar::kAuto;
  o.metrics_every = c.progress.metrics_every;
  o.status_port = static_cast<int>(c.status.port);
  o.status_bind = c.status.bind;
  return o;
}

}  // namespace

int run_selftest(Session& session) {
  MpiCommunicator& comm = session.comm();
  const SelftestSection& opt = session.config().selftest;
  std::string env_text = describe_environment(comm, session.env());
  if (comm.rank() == 0) log::info("env", "run environment:\n" + env_text);

  install_stop_handlers();
  SelfTest test(comm, opt.max_bytes);
  RunMonitor monitor(comm, monitor_options(session));
  log::info("selftest", "running " + std::to_string(opt.steps) + " steps of every collective on " +
                            std::to_string(comm.size()) + " rank(s)");
  for (int64_t step = 0; step < opt.steps; ++step) {
    comm.set_step(step);
    auto t0 = std::chrono::steady_clock::now();
    if (step == opt.stall_step && comm.rank() == opt.stall_rank) {
      log::warn("selftest", "test switch: stalling " + std::to_string(opt.stall_seconds) + " s at step " +
                                std::to_string(step));
      std::this_thread::sleep_for(std::chrono::duration<double>(opt.stall_seconds));
    }
    int64_t bytes = test.step(step);
    if (opt.step_sleep_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(opt.step_sleep_ms));
    double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    int stop = monitor.end_step(StepReport{step, 0.0, seconds, bytes});
    if (stop != 0) {
      monitor.finish();
      log::info_all("selftest", "stop requested (signal " + std::to_string(stop) + "): all ranks stopped after step " +
                                std::to_string(step));
      return 128 + stop;
    }
  }
  monitor.finish();
  log::info("selftest", "passed: " + std::to_string(opt.steps) + " steps, every collective checked on " +
                            std::to_string(comm.size()) + " rank(s)");
  return 0;
}

}  // namespace loom
