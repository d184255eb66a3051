#include "launch/monitor/progress.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>

#include <fmt/format.h>

#include "core/log.h"

namespace loom {
namespace {

constexpr double kBarRedrawSeconds = 0.2;
constexpr int kBarCells = 20;

bool known(double value) { return std::isfinite(value) && value >= 0; }

}  // namespace

std::string format_eta(double seconds) {
  if (!known(seconds)) return "--";
  const auto s = static_cast<int64_t>(std::llround(seconds));
  if (s < 60) return fmt::format("{}s", s);
  if (s < 3600) return fmt::format("{}m{:02}s", s / 60, s % 60);
  if (s < 86400) return fmt::format("{}h{:02}m", s / 3600, (s % 3600) / 60);
  return fmt::format("{}d{:02}h", s / 86400, (s % 86400) / 3600);
}

std::string format_rate(double per_second, std::string_view unit) {
  if (!known(per_second)) return fmt::format("-- {}/s", unit);
  static constexpr const char* kPrefixes[] = {"", "k", "M", "G", "T"};
  double value = per_second;
  size_t prefix = 0;
  // Scale first, then round: 999.6 prints as "1.00k", not "1000".
  while (prefix + 1 < std::size(kPrefixes) && std::round(value) >= 1000) {
    value /= 1000;
    ++prefix;
  }
  const char* p = kPrefixes[prefix];
  if (value < 9.995) return fmt::format("{:.2f}{} {}/s", value, p, unit);
  if (value < 99.95) return fmt::format("{:.1f}{} {}/s", value, p, unit);
  return fmt::format("{:.0f}{} {}/s", value, p, unit);
}

std::string format_step_rate(double steps_per_second) {
  if (!known(steps_per_second)) return "-- step/s";
  if (steps_per_second >= 1 || steps_per_second == 0) return format_rate(steps_per_second, "step");
  return fmt::format("{:.2f} s/step", 1.0 / steps_per_second);
}

std::string format_loss(double loss) {
  if (std::isnan(loss)) return "nan";
  if (std::isinf(loss)) return loss > 0 ? "inf" : "-inf";
  return fmt::format("{:.4f}", loss);
}

std::string format_progress_line(const ProgressState& s) {
  std::string line = fmt::format("step {}", s.step);
  if (s.total_steps > 0) {
    const double pct = 100.0 * static_cast<double>(s.step) / static_cast<double>(s.total_steps);
    line += fmt::format("/{} ({:.1f}%)", s.total_steps, pct);
  }
  line += " | " + format_rate(s.items_per_s, s.unit);
  line += " | " + format_step_rate(s.steps_per_s);
  line += " | loss " + format_loss(s.loss);
  if (s.total_steps > 0) line += " | eta " + format_eta(s.eta_s);
  line += " | elapsed " + format_eta(s.elapsed_s);
  return line;
}

namespace {

std::string bar_cells(int64_t done, int64_t total) {
  int64_t filled = total > 0 ? done * kBarCells / total : 0;
  if (filled < 0) filled = 0;
  if (filled > kBarCells) filled = kBarCells;
  std::string bar = "[";
  bar.append(static_cast<size_t>(filled), '#');
  bar.append(static_cast<size_t>(kBarCells - filled), '-');
  return bar + "] ";
}

}  // namespace

std::string format_progress_bar(const ProgressState& s) {
  if (s.total_steps <= 0) return format_progress_line(s);
  return bar_cells(s.step, s.total_steps) + format_progress_line(s);
}

std::string format_stage_line(const StageProgressState& s) {
  std::string line(s.stage);
  if (s.total > 0) {
    const double pct = 100.0 * static_cast<double>(s.done) / static_cast<double>(s.total);
    line += fmt::format(" {:.1f}%", std::min(pct, 100.0));
  }
  line += " | " + format_rate(s.per_s, s.unit);
  if (s.total > 0) line += " | eta " + format_eta(s.eta_s);
  line += " | elapsed " + format_eta(s.elapsed_s);
  return line;
}

std::string format_stage_bar(const StageProgressState& s) {
  if (s.total <= 0) return format_stage_line(s);
  return bar_cells(s.done, s.total) + format_stage_line(s);
}

Progress::Progress(bool live_bar, double interval_s) : live_bar_(live_bar), interval_s_(interval_s) {}

bool Progress::stderr_is_terminal() { return ::isatty(STDERR_FILENO) == 1; }

// Note [A bar under mpirun] in progress.h.
bool Progress::terminal_for_bar() {
  if (stderr_is_terminal()) return true;
  if (std::getenv("OMPI_COMM_WORLD_RANK") == nullptr) return false;
  const std::string parent_stderr = "/proc/" + std::to_string(::getppid()) + "/fd/2";
  struct stat st {};
  // A character device only: opening the read end of a pipe could wait for a writer.
  if (::stat(parent_stderr.c_str(), &st) != 0 || !S_ISCHR(st.st_mode)) return false;
  const int fd = ::open(parent_stderr.c_str(), O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return false;
  const bool tty = ::isatty(fd) == 1;
  ::close(fd);
  return tty;
}

void Progress::update(const ProgressState& state) {
  const auto now = Clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  const double period = live_bar_ ? kBarRedrawSeconds : interval_s_;
  if (drawn_ && since < period) return;
  last_draw_ = now;
  draw(state, false);
}

void Progress::finish(const ProgressState& state) { draw(state, true); }

void Progress::clear_line() {
  if (!live_bar_ || !drawn_) return;
  log::clear_live_line();
  drawn_ = false;   // redraw at the next update
}

void Progress::draw(const ProgressState& state, bool final_line) {
  draw_text(final_line ? "finished " + format_progress_line(state) : format_progress_line(state),
            format_progress_bar(state), final_line);
}

void Progress::update_stage(const StageProgressState& state) {
  const auto now = Clock::now();
  const double since = std::chrono::duration<double>(now - last_draw_).count();
  const double period = live_bar_ ? kBarRedrawSeconds : interval_s_;
  if (drawn_ && since < period) return;
  last_draw_ = now;
  draw_stage(state, false);
}

void Progress::finish_stage(const StageProgressState& state) { draw_stage(state, true); }

void Progress::draw_stage(const StageProgressState& state, bool final_line) {
  const std::string line = format_stage_line(state);
  draw_text(final_line ? line + " (done)" : line, format_stage_bar(state), final_line);
}

// A live bar goes through the log (Note [Log lines above the live line] in core/log.h), so
// that log lines from any thread print above it instead of after it on the same line.
void Progress::draw_text(const std::string& plain, const std::string& bar, bool final_line) {
  drawn_ = !final_line;
  if (!live_bar_) {
    log::info("progress", plain);
    return;
  }
  if (final_line) {
    log::end_live_line(bar);
  } else {
    log::set_live_line(bar);
  }
}

}  // namespace loom
