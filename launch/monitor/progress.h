#pragma once
// Progress display on rank 0: step/total, rates, loss, ETA. On a terminal it is one live line
// redrawn in place with '\r'; otherwise (a log file, a batch job) it is a plain log line every
// interval. The formatting functions are pure so that tests can pin their exact output.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace loom {

// What one progress line shows. Rates are over a recent window; negative or non-finite
// values mean "not known yet" and print as "--".
struct ProgressState {
  int64_t step = 0;          // steps finished (the step number just completed)
  int64_t total_steps = 0;   // 0 = unknown: no percentage, bar or ETA
  double items_per_s = 0;    // summed over ranks
  double steps_per_s = 0;
  double loss = 0;           // mean over ranks
  double eta_s = -1;         // seconds to total_steps
  double elapsed_s = 0;      // since the monitor started
  std::string_view unit = "items";
};

// "--" (unknown or negative), "45s", "3m05s", "1h02m", "2d03h". Rounds to the whole second.
std::string format_eta(double seconds);
// Three significant digits with k/M/G/T: "532 tok/s", "1.23k tok/s", "12.3M tok/s",
// "5.50 tok/s"; "-- tok/s" when unknown.
std::string format_rate(double per_second, std::string_view unit);
// "4.56 step/s" at one step a second or faster, else "2.50 s/step".
std::string format_step_rate(double steps_per_second);
// "2.3457"; "nan"/"inf" as such.
std::string format_loss(double loss);
// "step 120/1000 (12.0%) | 1.23k tok/s | 4.56 step/s | loss 2.3457 | eta 3m12s | elapsed 26s"
// (no "/total (pct)" and no eta when total_steps is 0).
std::string format_progress_line(const ProgressState& state);
// "[#####---------------] " + format_progress_line; a 20-cell bar when total_steps > 0.
std::string format_progress_bar(const ProgressState& state);

// Draws progress on stderr. Not thread-safe: one training thread calls it (rank 0).
class Progress {
 public:
  // live_bar: redraw one line in place (call stderr_is_terminal() to decide for kAuto).
  // interval_s: period of plain log lines when not live.
  Progress(bool live_bar, double interval_s);

  // Called every step; draws only when due (a live bar at most 5 times a second).
  void update(const ProgressState& state);
  // The final line, always drawn; ends the live line with '\n'.
  void finish(const ProgressState& state);
  // Erases a live bar so that a log line can follow on a clean line; the next update()
  // redraws it. No-op for plain lines.
  void clear_line();

  bool live_bar() const { return live_bar_; }
  static bool stderr_is_terminal();

 private:
  using Clock = std::chrono::steady_clock;
  void draw(const ProgressState& state, bool final_line);

  bool live_bar_;
  double interval_s_;
  bool drawn_ = false;
  Clock::time_point last_draw_{};
};

}  // namespace loom
