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
};

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
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
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

}  // namespace loom::log
