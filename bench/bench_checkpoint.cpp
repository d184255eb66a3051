// Checkpoint write and read throughput. `bench_checkpoint DIR MB [gathered|parallel|auto]`
// saves MB megabytes (10^6 bytes) of float32 parameters (16 parameters of equal size) to
// DIR/bench.h5 through save_checkpoint (fsync and rename included), drops the file from the
// page cache (posix_fadvise DONTNEED; the pages are clean after fsync), then opens it with
// CheckpointReader (which verifies every checksum) and reads it into a ParamStore.
// Prints one line per phase with MB/s; the file is deleted at the end.
// `bench_checkpoint --raw FILE MB` writes the same parameter bytes, raw, to FILE (no
// MPI): the source of the script's plain `dd` write, so that both write the same bytes.
#include <fcntl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "core/param_store.h"
#include "dist/mpi_communicator.h"
#include "io/checkpoint.h"

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void drop_cache(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  ::posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  ::close(fd);
}

// The benchmark's parameters: kParams matrices of (rows, kCols) float32, filled with one
// fixed pattern; --raw writes the same values.
constexpr int kParams = 16;
constexpr int64_t kCols = 1024;
int64_t rows_for(double mb) { return static_cast<int64_t>(mb * 1e6 / 4.0 / kParams / kCols); }
void fill(float* v, int64_t n) {
  for (int64_t k = 0; k < n; ++k) v[k] = static_cast<float>(k % 9973) * 0.001f;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: bench_checkpoint DIR MB [gathered|parallel|auto]\n");
    return 2;
  }
  if (std::string(argv[1]) == "--raw") {
    if (argc < 4) return 2;
    std::vector<float> v(static_cast<size_t>(rows_for(std::stod(argv[3])) * kParams * kCols));
    fill(v.data(), static_cast<int64_t>(v.size()));
    FILE* f = std::fopen(argv[2], "wb");
    const bool ok = f != nullptr && std::fwrite(v.data(), 4, v.size(), f) == v.size();
    if (f != nullptr && std::fclose(f) != 0) return 1;
    return ok ? 0 : 1;
  }
  loom::MpiCommunicator& comm = loom::MpiCommunicator::init_world(&argc, &argv);
  const std::string dir = argv[1];
  const double mb = std::stod(argv[2]);
  const std::string mode_name = argc > 3 ? argv[3] : "gathered";
  loom::WriteMode mode = mode_name == "parallel" ? loom::WriteMode::kParallel
                         : mode_name == "auto"   ? loom::WriteMode::kAuto
                                                 : loom::WriteMode::kGathered;
  const int64_t rows = rows_for(mb);
  loom::ParamStore params;
  for (int i = 0; i < kParams; ++i) params.declare("layer." + std::to_string(i) + ".weight", {rows, kCols});
  params.finalize();
  fill(params.values().f32(), params.total_elements());
  const double bytes = static_cast<double>(params.parameter_count()) * 4.0;

  loom::SaveRequest req;
  req.meta.model_kind = "bench";
  req.params = &params;
  comm.barrier();
  auto t0 = std::chrono::steady_clock::now();
  loom::WriteMode used = mode;
  std::string path = loom::save_checkpoint(comm, dir, "bench", req, mode, &used);
  double write_s = seconds_since(t0);

  int code = 0;
  if (comm.rank() == 0) {
    drop_cache(path);
    t0 = std::chrono::steady_clock::now();
    loom::CheckpointReader reader;
    reader.open(path);
    double open_s = seconds_since(t0);
    reader.read_model_into(params);
    double read_s = seconds_since(t0);
    std::printf("checkpoint %.0f MB ranks=%d mode=%s: write %.2f s = %.0f MB/s; read (open+verify %.2f s, "
                "total %.2f s) = %.0f MB/s\n",
                bytes / 1e6, comm.size(), loom::write_mode_name(used), write_s, bytes / 1e6 / write_s, open_s,
                read_s, bytes / 1e6 / read_s);
    std::printf("RESULT write_mbps=%.1f read_mbps=%.1f\n", bytes / 1e6 / write_s, bytes / 1e6 / read_s);
    if (::unlink(path.c_str()) != 0) code = 1;
    ::unlink((dir + "/latest").c_str());
  }
  loom::MpiCommunicator::shutdown_world();
  return code;
}
