// bench_allreduce: loom's MpiCommunicator::allreduce against a plain MPI_Allreduce loop on
// the same buffer, same iteration count, alternating reps, after a warm-up. Prints one
// row per size: the fastest rep's time per call of each, and the ratio loom/plain (the watchdog's
// arming and the arrival-table write are the difference).
//
//   mpirun -np N bench_allreduce [--min-bytes B] [--max-bytes B] [--factor F] [--reps R]
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "core/buffer.h"
#include "core/error.h"
#include "dist/mpi_communicator.h"

// Every MPI return code is checked, in the timed loop too (a compare costs nothing).
#define BENCH_MPI(expr)                                                               \
  do {                                                                                \
    if ((expr) != MPI_SUCCESS) throw loom::LibraryError(std::string("MPI call failed: ") + #expr); \
  } while (0)

namespace {

struct Options {
  int64_t min_bytes = 4 << 10;
  int64_t max_bytes = int64_t{256} << 20;
  int64_t factor = 4;
  int reps = 7;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    int64_t value = std::stoll(argv[i + 1]);
    if (flag == "--min-bytes") o.min_bytes = value;
    else if (flag == "--max-bytes") o.max_bytes = value;
    else if (flag == "--factor") o.factor = value;
    else if (flag == "--reps") o.reps = static_cast<int>(value);
    else throw loom::ConfigError("bench_allreduce: unknown option " + flag);
  }
  return o;
}

using Clock = std::chrono::steady_clock;

// Seconds per call of `iters` calls, on rank 0's clock, started together after a barrier.
template <class Fn>
double time_loop(int iters, Fn&& call) {
  BENCH_MPI(MPI_Barrier(MPI_COMM_WORLD));
  auto start = Clock::now();
  for (int i = 0; i < iters; ++i) call();
  double seconds = std::chrono::duration<double>(Clock::now() - start).count() / iters;
  BENCH_MPI(MPI_Bcast(&seconds, 1, MPI_DOUBLE, 0, MPI_COMM_WORLD));  // rank 0's number for everyone
  return seconds;
}

double fastest(const std::vector<double>& v) {
  double best = v.empty() ? 0.0 : v[0];
  for (double x : v) best = std::min(best, x);
  return best;
}

void bench_size(loom::MpiCommunicator& comm, int64_t bytes, const Options& o) {
  const int64_t n = bytes / 4;
  loom::Buffer buffer(static_cast<size_t>(n) * 4);
  loom::Tensor data = buffer.as(loom::DType::kF32);  // (n)
  float* p = data.f32();
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<float>(i % 7);
  // Enough calls per rep for ~64 MiB of traffic, at least 3.
  const int iters = static_cast<int>(std::clamp<int64_t>((int64_t{64} << 20) / bytes, 3, 500));
  auto loom_call = [&] { comm.allreduce(data, loom::ReduceOp::kSum); };
  auto plain_call = [&] {
    BENCH_MPI(MPI_Allreduce(MPI_IN_PLACE, p, static_cast<int>(n), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
  };
  time_loop(2, loom_call);  // warm-up: pages, connections, algorithm selection
  time_loop(2, plain_call);
  std::vector<double> loom_s, plain_s;
  for (int rep = 0; rep < o.reps; ++rep) {  // alternate who goes first
    if (rep % 2 == 0) loom_s.push_back(time_loop(iters, loom_call));
    plain_s.push_back(time_loop(iters, plain_call));
    if (rep % 2 == 1) loom_s.push_back(time_loop(iters, loom_call));
  }
  // The minimum over reps: the machine is shared, and noise only ever adds time.
  double a = fastest(loom_s), b = fastest(plain_s);
  if (comm.rank() == 0)
    std::printf("%12lld %4d %6d %12.1f %12.1f %8.3f\n", static_cast<long long>(bytes),
                comm.size(), iters, a * 1e6, b * 1e6, a / b);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Options o = parse(argc, argv);
    loom::MpiCommunicator& comm = loom::MpiCommunicator::init_world(&argc, &argv);
    if (comm.rank() == 0)
      std::printf("%12s %4s %6s %12s %12s %8s\n", "bytes", "np", "iters", "loom_us", "plain_us",
                  "ratio");
    for (int64_t bytes = o.min_bytes; bytes <= o.max_bytes; bytes *= o.factor)
      bench_size(comm, bytes, o);
    loom::MpiCommunicator::shutdown_world();
    return 0;
  } catch (const loom::Error& e) {
    std::fprintf(stderr, "bench_allreduce: %s\n", e.what());
    return e.exit_code();
  }
}
