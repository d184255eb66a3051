#pragma once
// Progress display on rank 0: step/total, rates, loss, ETA. On a terminal it is one live line
// redrawn in place at the bottom, below the log lines (core/log.h's live line); otherwise (a log file, a batch job) it is a plain log line every
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

// A data stage (counting the vocabulary, the co-occurrences, tokenizing): how much of this
// rank's share is done. Negative or non-finite rate/eta: unknown.
struct StageProgressState {
  std::string_view stage;    // "vocab", "cooccur", "tokens", ...
  int64_t done = 0;          // units done (bytes of the corpus read)
  int64_t total = 0;         // 0 = unknown: no percentage, bar or ETA
  double per_s = -1;
  double eta_s = -1;
  double elapsed_s = 0;      // since the stage began
  std::string_view unit = "B";
};
// "vocab 45.2% | 12.3M B/s | eta 3s | elapsed 2s" (no percentage or eta when total is 0).
std::string format_stage_line(const StageProgressState& state);
// "[#########-----------] " + format_stage_line when total > 0.
std::string format_stage_bar(const StageProgressState& state);

// Draws progress on stderr. Not thread-safe: one training thread calls it (rank 0).
class Progress {
 public:
  // live_bar: redraw one line in place (call bar_wanted() to decide for kAuto).
  // interval_s: period of plain log lines when not live.
  Progress(bool live_bar, double interval_s);

  // Called every step; draws only when due (a live bar at most 5 times a second).
  void update(const ProgressState& state);
  // The final line, always drawn; ends the live line with '\n'.
  void finish(const ProgressState& state);
  // The same for a data stage.
  void update_stage(const StageProgressState& state);
  void finish_stage(const StageProgressState& state);
  // Erases a live bar; the next update() redraws it. No-op for plain lines. Log lines need
  // no clearing: they print above the bar (Note [Log lines above the live line]).
  void clear_line();

  bool live_bar() const { return live_bar_; }
  static bool stderr_is_terminal();
  // Note [A bar under mpirun]: Open MPI hands its ranks a pipe for stderr even when mpirun
  // writes to a terminal, and forwards what they write as it comes ('\r' and partial lines
  // included). So rank 0 of an Open MPI job draws the bar when mpirun's stderr (its parent
  // process's fd 2, on the same node) is a terminal; a rank launched by srun or on another
  // node than mpirun gets plain lines.
  static bool terminal_for_bar();

 private:
  using Clock = std::chrono::steady_clock;
  void draw(const ProgressState& state, bool final_line);
  void draw_stage(const StageProgressState& state, bool final_line);
  void draw_text(const std::string& plain, const std::string& bar, bool final_line);

  bool live_bar_;
  double interval_s_;
  bool drawn_ = false;
  Clock::time_point last_draw_{};
};

}  // namespace loom
