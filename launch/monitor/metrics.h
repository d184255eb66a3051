#pragma once
// metrics.jsonl: one JSON object per line in the run directory, written by rank 0.
//   {"step":12,"time":3.52,"loss":2.31,"items_per_s":18234.5,"steps_per_s":3.4,
//    "step_seconds_min":0.28,"step_seconds_mean":0.29,"step_seconds_max":0.31,"slowest_rank":1}
// Each line goes out in one write(2) on an O_APPEND descriptor, so a job killed at any
// instant leaves only complete lines, and a resumed run continues the same file.
// Non-finite numbers (a diverged loss) are written as null.
#include <cstdint>
#include <string>

namespace loom {

struct MetricsRecord {
  int64_t step = 0;
  double time_s = 0;          // seconds since the monitor started
  double loss = 0;            // mean over ranks
  double items_per_s = 0;     // summed over ranks, over the recent window
  double steps_per_s = 0;
  double step_seconds_min = 0;    // this step's step_seconds over ranks
  double step_seconds_mean = 0;
  double step_seconds_max = 0;
  int slowest_rank = 0;       // the rank with step_seconds_max
};

// The JSON object of one record, without the trailing newline.
std::string metrics_json_line(const MetricsRecord& record);

class MetricsWriter {
 public:
  static constexpr const char* kFileName = "metrics.jsonl";

  // Creates run_dir if missing and opens run_dir/metrics.jsonl for appending.
  // Throws IoError naming the path when either fails.
  explicit MetricsWriter(const std::string& run_dir);
  ~MetricsWriter();
  MetricsWriter(const MetricsWriter&) = delete;
  MetricsWriter& operator=(const MetricsWriter&) = delete;

  // Appends one line. Throws IoError naming the path on a failed write (full disk).
  void write(const MetricsRecord& record);
  // fsync and close; further writes are errors. Idempotent.
  void close();

  const std::string& path() const { return path_; }

 private:
  std::string path_;
  int fd_ = -1;
};

}  // namespace loom
