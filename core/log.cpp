#include "core/log.h"

#include <cstdio>
#include <mutex>
#include <string>

namespace loom::log {
namespace {

struct State {
  std::mutex mutex;
  int rank = 0;
  int size = 1;
  bool known = false;
  Level level = Level::kInfo;
  bool all_ranks = false;
  std::string prefix = "[r?/?]";
  std::string live;   // the live line shown at the bottom (Note [Log lines above the live line])
};

// One write(2)-sized fwrite, flushed: the line arrives whole.
void put(const std::string& text) {
  std::fwrite(text.data(), 1, text.size(), stderr);
  std::fflush(stderr);
}

constexpr const char* kEraseLine = "\r\x1b[K";

State& state() {
  static State s;
  return s;
}

void emit(Level lvl, bool any_rank, std::string_view subsystem, std::string_view message) {
  State& s = state();
  if (lvl < s.level) return;
  if (lvl < Level::kWarn && !any_rank && !s.all_ranks && s.rank != 0) return;
  const char* tag = lvl == Level::kError ? "error: " : lvl == Level::kWarn ? "warning: " : "";
  std::string line;
  line.reserve(subsystem.size() + message.size() + 32);
  line += s.prefix;
  line += '[';
  line += subsystem;
  line += "] ";
  line += tag;
  line += message;
  line += '\n';
  std::lock_guard<std::mutex> lock(s.mutex);
  if (!s.live.empty()) line = kEraseLine + line + s.live;   // above the live line, which is redrawn
  put(line);
}

}  // namespace

void set_rank(int rank, int size) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.rank = rank;
  s.size = size;
  s.known = true;
  s.prefix = "[r" + std::to_string(rank) + "/" + std::to_string(size) + "]";
}

void set_level(Level lvl) { state().level = lvl; }
void set_all_ranks(bool all) { state().all_ranks = all; }
Level level() { return state().level; }

void debug(std::string_view sub, std::string_view msg) { emit(Level::kDebug, false, sub, msg); }
void info(std::string_view sub, std::string_view msg) { emit(Level::kInfo, false, sub, msg); }
void warn(std::string_view sub, std::string_view msg) { emit(Level::kWarn, true, sub, msg); }
void error(std::string_view sub, std::string_view msg) { emit(Level::kError, true, sub, msg); }
void info_all(std::string_view sub, std::string_view msg) { emit(Level::kInfo, true, sub, msg); }

std::string_view rank_prefix() { return state().prefix; }

void set_live_line(std::string_view text) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.live.assign(text);
  // Erase after the text, not before: the old line is overwritten without a blank flash.
  put("\r" + s.live + "\x1b[K");
}

void end_live_line(std::string_view text) {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  s.live.clear();
  put("\r" + std::string(text) + "\x1b[K\n");
}

void clear_live_line() {
  State& s = state();
  std::lock_guard<std::mutex> lock(s.mutex);
  if (s.live.empty()) return;
  s.live.clear();
  put(kEraseLine);
}

}  // namespace loom::log
