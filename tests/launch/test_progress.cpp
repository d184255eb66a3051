// Progress formatting (exact strings) and metrics.jsonl lines and files.
#include <cmath>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "launch/monitor/metrics.h"
#include "launch/monitor/progress.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

constexpr double kNan = std::numeric_limits<double>::quiet_NaN();
constexpr double kInf = std::numeric_limits<double>::infinity();

TEST(FormatEta, UnknownIsDashes) {
  EXPECT_EQ(format_eta(-1), "--");
  EXPECT_EQ(format_eta(kNan), "--");
  EXPECT_EQ(format_eta(kInf), "--");
}

TEST(FormatEta, SecondsMinutesHoursDays) {
  EXPECT_EQ(format_eta(0), "0s");
  EXPECT_EQ(format_eta(45.4), "45s");
  EXPECT_EQ(format_eta(59.6), "1m00s");
  EXPECT_EQ(format_eta(185), "3m05s");
  EXPECT_EQ(format_eta(3599), "59m59s");
  EXPECT_EQ(format_eta(3720), "1h02m");
  EXPECT_EQ(format_eta(86399), "23h59m");
  EXPECT_EQ(format_eta(86400 + 3 * 3600 + 59), "1d03h");
  EXPECT_EQ(format_eta(12 * 86400.0), "12d00h");
}

TEST(FormatRate, ThreeSignificantDigitsWithPrefix) {
  EXPECT_EQ(format_rate(0, "tok"), "0.00 tok/s");
  EXPECT_EQ(format_rate(5.5, "tok"), "5.50 tok/s");
  EXPECT_EQ(format_rate(42.3, "B"), "42.3 B/s");
  EXPECT_EQ(format_rate(532, "tok"), "532 tok/s");
  EXPECT_EQ(format_rate(999.6, "tok"), "1.00k tok/s");
  EXPECT_EQ(format_rate(1234, "tok"), "1.23k tok/s");
  EXPECT_EQ(format_rate(12345678, "pairs"), "12.3M pairs/s");
  EXPECT_EQ(format_rate(4.2e9, "B"), "4.20G B/s");
  EXPECT_EQ(format_rate(-1, "tok"), "-- tok/s");
  EXPECT_EQ(format_rate(kNan, "tok"), "-- tok/s");
}

TEST(FormatStepRate, StepsPerSecondOrSecondsPerStep) {
  EXPECT_EQ(format_step_rate(4.56), "4.56 step/s");
  EXPECT_EQ(format_step_rate(1), "1.00 step/s");
  EXPECT_EQ(format_step_rate(0.4), "2.50 s/step");
  EXPECT_EQ(format_step_rate(0), "0.00 step/s");
  EXPECT_EQ(format_step_rate(-1), "-- step/s");
}

TEST(FormatLoss, FourDecimalsAndNonFinite) {
  EXPECT_EQ(format_loss(2.34567), "2.3457");
  EXPECT_EQ(format_loss(0), "0.0000");
  EXPECT_EQ(format_loss(kNan), "nan");
  EXPECT_EQ(format_loss(kInf), "inf");
  EXPECT_EQ(format_loss(-kInf), "-inf");
}

ProgressState sample_state() {
  ProgressState s;
  s.step = 120;
  s.total_steps = 1000;
  s.items_per_s = 1234;
  s.steps_per_s = 4.56;
  s.loss = 2.34567;
  s.eta_s = 192;
  s.elapsed_s = 26;
  s.unit = "tok";
  return s;
}

TEST(FormatProgress, LineWithTotal) {
  EXPECT_EQ(format_progress_line(sample_state()),
            "step 120/1000 (12.0%) | 1.23k tok/s | 4.56 step/s | loss 2.3457 | eta 3m12s | elapsed 26s");
}

TEST(FormatProgress, LineWithoutTotalHasNoPercentOrEta) {
  ProgressState s = sample_state();
  s.total_steps = 0;
  EXPECT_EQ(format_progress_line(s), "step 120 | 1.23k tok/s | 4.56 step/s | loss 2.3457 | elapsed 26s");
}

TEST(FormatProgress, LineBeforeRatesAreKnown) {
  ProgressState s;
  s.step = 1;
  s.total_steps = 10;
  s.items_per_s = -1;
  s.steps_per_s = -1;
  s.loss = kNan;
  s.eta_s = -1;
  s.elapsed_s = 0.2;
  EXPECT_EQ(format_progress_line(s),
            "step 1/10 (10.0%) | -- items/s | -- step/s | loss nan | eta -- | elapsed 0s");
}

TEST(FormatProgress, BarHasTwentyCells) {
  ProgressState s = sample_state();
  s.step = 250;
  EXPECT_EQ(format_progress_bar(s),
            "[#####---------------] step 250/1000 (25.0%) | 1.23k tok/s | 4.56 step/s | loss 2.3457 "
            "| eta 3m12s | elapsed 26s");
  s.step = 1000;
  EXPECT_EQ(format_progress_bar(s).substr(0, 23), "[####################] ");
  s.step = 0;
  EXPECT_EQ(format_progress_bar(s).substr(0, 23), "[--------------------] ");
  s.total_steps = 0;   // unknown total: no bar
  EXPECT_EQ(format_progress_bar(s), format_progress_line(s));
}

MetricsRecord sample_record(int64_t step) {
  MetricsRecord r;
  r.step = step;
  r.epoch = 1;
  r.lr = 0.025;
  r.time_s = 1.5;
  r.loss = 2.25;
  r.items_per_s = 1000;
  r.steps_per_s = 2;
  r.step_seconds_min = 0.25;
  r.step_seconds_mean = 0.5;
  r.step_seconds_max = 0.75;
  r.slowest_rank = 2;
  return r;
}

TEST(MetricsLine, ExactJson) {
  EXPECT_EQ(metrics_json_line(sample_record(3)),
            R"({"step":3,"epoch":1,"lr":0.025,"time":1.5,"loss":2.25,"items_per_s":1000.0,"steps_per_s":2.0,)"
            R"("step_seconds_min":0.25,"step_seconds_mean":0.5,"step_seconds_max":0.75,"slowest_rank":2})");
}

TEST(MetricsLine, NonFiniteLossIsNull) {
  MetricsRecord r = sample_record(4);
  r.loss = kNan;
  const auto j = nlohmann::json::parse(metrics_json_line(r));
  EXPECT_TRUE(j["loss"].is_null());
  EXPECT_EQ(j["step"], 4);
}

TEST(MetricsLine, UnreportedLearningRateIsNull) {
  MetricsRecord r = sample_record(5);
  r.lr = -1;
  const auto j = nlohmann::json::parse(metrics_json_line(r));
  EXPECT_TRUE(j["lr"].is_null());
  EXPECT_EQ(j["epoch"], 1);
}

TEST(FormatStage, LineAndBar) {
  StageProgressState s;
  s.stage = "vocab";
  s.done = 250;
  s.total = 1000;
  s.per_s = 1230;
  s.eta_s = 0.6;
  s.elapsed_s = 2.2;
  EXPECT_EQ(format_stage_line(s), "vocab 25.0% | 1.23k B/s | eta 1s | elapsed 2s");
  EXPECT_EQ(format_stage_bar(s), "[#####---------------] vocab 25.0% | 1.23k B/s | eta 1s | elapsed 2s");
  s.total = 0;   // unknown total: no percentage, bar or eta
  EXPECT_EQ(format_stage_bar(s), "vocab | 1.23k B/s | elapsed 2s");
}

std::vector<std::string> lines_of(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(MetricsWriter, CreatesTheRunDirAndAppendsAcrossWriters) {
  test::TempDir dir;
  const std::string run_dir = dir.file("runs/a");   // does not exist yet
  {
    MetricsWriter w(run_dir);
    EXPECT_EQ(w.path(), run_dir + "/metrics.jsonl");
    w.write(sample_record(0));
    w.write(sample_record(1));
  }
  {
    MetricsWriter w(run_dir);   // a resumed run continues the file
    w.write(sample_record(2));
    w.close();
    EXPECT_THROW(w.write(sample_record(3)), IoError);
  }
  const std::string text = test::read_file(run_dir + "/metrics.jsonl");
  ASSERT_FALSE(text.empty());
  EXPECT_EQ(text.back(), '\n');
  const auto lines = lines_of(run_dir + "/metrics.jsonl");
  ASSERT_EQ(lines.size(), 3u);
  for (size_t i = 0; i < lines.size(); ++i) {
    const auto j = nlohmann::json::parse(lines[i]);
    EXPECT_EQ(j["step"], static_cast<int64_t>(i)) << "line " << i << ": " << lines[i];
  }
}

TEST(MetricsWriter, UnusableRunDirNamesThePath) {
  test::TempDir dir;
  test::write_file(dir.file("plain_file"), "x");
  const std::string run_dir = dir.file("plain_file/run");   // parent is a regular file
  try {
    MetricsWriter w(run_dir);
    FAIL() << "expected IoError";
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find(run_dir), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace loom
