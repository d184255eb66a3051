#include "core/log.h"

#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>

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

// Note [Whole lines from every rank]
// Under mpirun -np 2 with run.log_all_ranks, both ranks' lines reach one stream, and a
// reader must be able to tell every line's rank. So every line of a message carries the
// prefix (a multi-line message - the resolved config, a list of missing files - used to
// print its later lines bare), and lines reach the file descriptor in write(2) calls that
// each hold whole lines and at most PIPE_BUF bytes: such a write to a pipe is atomic.
// That is not enough under mpirun: each rank's stderr is a pipe that mpirun (or orted)
// drains with read()s of up to 4 KiB, and a read takes what the pipe holds whatever the
// writes were, so with two writes waiting (5 KiB of resolved config) it ended mid-line and
// the other rank's line was forwarded between the halves ("beta2 =[r1/2][comm] MPI world
// ..."). So when stderr is a pipe, a write first waits until the reader has taken what the
// previous one left (FIONREAD reads 0): every read then takes exactly one write of whole
// lines. The wait is bounded (kDrainWait): a reader that stalls gets the line anyway,
// perhaps split, rather than slowing training. A single line longer than PIPE_BUF goes in
// one call of its own and may still be split. write(2) directly, not stdio: fwrite to the
// unbuffered stderr happens to be one write, but nothing promises it.
constexpr auto kDrainWait = std::chrono::milliseconds(250);

bool stderr_is_pipe() {
  static const bool pipe = [] {
    struct stat st {};
    return ::fstat(STDERR_FILENO, &st) == 0 && S_ISFIFO(st.st_mode);
  }();
  return pipe;
}

void wait_for_reader() {
  if (!stderr_is_pipe()) return;
  const auto deadline = std::chrono::steady_clock::now() + kDrainWait;
  int queued = 0;
  while (::ioctl(STDERR_FILENO, FIONREAD, &queued) == 0 && queued > 0 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::microseconds(200));
}

void write_all(const char* p, size_t n) {
  wait_for_reader();
  while (n > 0) {
    const ssize_t w = ::write(STDERR_FILENO, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return;   // stderr closed or full: nothing better to do with a log line
    p += w;
    n -= static_cast<size_t>(w);
  }
}

void put(const std::string& text) {
  std::fflush(stderr);   // anything printed through stdio first stays before this
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = begin;   // the longest run of whole lines within PIPE_BUF bytes
    for (;;) {
      const size_t nl = text.find('\n', end);
      const size_t next = nl == std::string::npos ? text.size() : nl + 1;
      if (end > begin && next - begin > PIPE_BUF) break;
      end = next;
      if (next == text.size() || next - begin >= PIPE_BUF) break;
    }
    write_all(text.data() + begin, end - begin);
    begin = end;
  }
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
  // Every line of the message gets the prefix (Note [Whole lines from every rank]).
  std::string head = s.prefix;
  head += '[';
  head += subsystem;
  head += "] ";
  std::string line;
  line.reserve(head.size() + message.size() + 32);
  line += head;
  line += tag;
  for (size_t begin = 0;;) {
    const size_t nl = message.find('\n', begin);
    if (nl == std::string_view::npos) {
      line += message.substr(begin);
      break;
    }
    line += message.substr(begin, nl + 1 - begin);
    begin = nl + 1;
    if (begin == message.size()) break;   // a trailing newline ends the message
    line += head;
  }
  if (line.back() != '\n') line += '\n';
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
