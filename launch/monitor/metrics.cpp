#include "launch/monitor/metrics.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <system_error>

#include <nlohmann/json.hpp>

#include "core/error.h"

namespace loom {
namespace {

nlohmann::json number(double value) {
  if (!std::isfinite(value)) return nullptr;
  return value;
}

}  // namespace

std::string metrics_json_line(const MetricsRecord& r) {
  // nlohmann::ordered_json keeps the documented field order, which makes lines easy to read.
  nlohmann::ordered_json j;
  j["step"] = r.step;
  j["epoch"] = r.epoch;
  j["lr"] = r.lr >= 0 ? number(r.lr) : nullptr;
  j["time"] = number(r.time_s);
  j["loss"] = number(r.loss);
  j["items_per_s"] = number(r.items_per_s);
  j["steps_per_s"] = number(r.steps_per_s);
  j["step_seconds_min"] = number(r.step_seconds_min);
  j["step_seconds_mean"] = number(r.step_seconds_mean);
  j["step_seconds_max"] = number(r.step_seconds_max);
  j["slowest_rank"] = r.slowest_rank;
  return j.dump();
}

MetricsWriter::MetricsWriter(const std::string& run_dir)
    : path_((std::filesystem::path(run_dir) / kFileName).string()) {
  std::error_code ec;
  std::filesystem::create_directories(run_dir, ec);
  if (ec) {
    throw IoError("cannot create the run directory " + run_dir + ": " + ec.message() +
                  " (check the path and its permissions)");
  }
  fd_ = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd_ < 0) {
    throw IoError("cannot open " + path_ + " for appending: " + std::strerror(errno));
  }
}

MetricsWriter::~MetricsWriter() {
  try {
    close();
  } catch (const Error&) {
    // A destructor must not throw; close() reported nothing worth more than the data loss
    // already visible in the file.
  }
}

void MetricsWriter::write(const MetricsRecord& record) {
  LOOM_CHECK(fd_ >= 0, IoError, "write to " + path_ + " after it was closed");
  const std::string line = metrics_json_line(record) + "\n";
  // One write(2) per line (see metrics.h); loop only for the rare short write.
  size_t done = 0;
  while (done < line.size()) {
    const ssize_t n = ::write(fd_, line.data() + done, line.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      throw IoError("cannot append to " + path_ + " at step " + std::to_string(record.step) +
                    ": " + std::strerror(errno));
    }
    done += static_cast<size_t>(n);
  }
}

void MetricsWriter::close() {
  if (fd_ < 0) return;
  const int fd = fd_;
  fd_ = -1;
  const bool synced = ::fsync(fd) == 0 || errno == EINVAL;   // EINVAL: a pipe or /dev/null
  const int sync_errno = errno;
  ::close(fd);
  if (!synced) throw IoError("cannot flush " + path_ + ": " + std::strerror(sync_errno));
}

}  // namespace loom
