#pragma once
// metrics.jsonl: one JSON object per line in the run directory, written by rank 0.
//   {"step":12,"epoch":0,"lr":0.05,"time":3.52,"loss":2.31,"items_per_s":18234.5,"steps_per_s":3.4,
//    "step_seconds_min":0.28,"step_seconds_mean":0.29,"step_seconds_max":0.31,"slowest_rank":1}
// "epoch" is the epochs completed when the step ended; "lr" the learning rate the step used
// (null for a model that reports none).
//
// Note [Step numbers]
// Everything loom shows counts steps done, from 1: metrics.jsonl's "step", the progress
// line, /status's "step", /metrics' loom_steps_total, a checkpoint's meta.step and its
// name (step_00000012.h5 holds the state after 12 steps, and a run resumed from it runs
// the step numbered 13 next). A metrics line with "step": 12 describes the 12th step, the
// one that ends in that checkpoint's state. Inside the training loop the step *index*
// (from 0, Communicator::set_step, StepContext::step) is what a step is called in error
// messages of collectives and RNG keys; it never reaches a file or an endpoint.
// progress.metrics_every = N writes the steps N, 2N, ... and the last one.
// Each line goes out in one write(2) on an O_APPEND descriptor, so a job killed at any
// instant leaves only complete lines, and a resumed run continues the same file.
// Non-finite numbers (a diverged loss) are written as null.
#include <cstdint>
#include <string>

namespace loom {

struct MetricsRecord {
  int64_t step = 0;           // steps done (Note [Step numbers]): the first line is step 1
  int64_t epoch = 0;          // epochs completed
  double lr = -1;             // < 0: not reported (null)
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
