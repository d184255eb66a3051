// What a user watching a run sees: the `loom` binary run in a pseudo-terminal (forkpty), as
// a user's shell runs it, alone and under mpirun, and the status server asked over real HTTP
// on 127.0.0.1 while the data stages run.
//   - Log lines print above the progress bar and never share a line with it (Note [Log lines
//     above the live line] in core/log.h): a tiny terminal emulator replays the bytes and
//     checks every line the user is left with.
//   - Under mpirun, rank 0 draws the bar because mpirun's stderr is the terminal (Note [A bar
//     under mpirun] in launch/monitor/progress.h).
//   - /status answers from the start and names the data stage with its progress: during the
//     vocabulary and co-occurrence stages of a one-rank run, done == total == the corpus's
//     bytes (LOOM_FAULT_STAGE_PAUSE_MS holds each finished stage open so that a fast machine
//     cannot finish it between two requests).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pty.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdlib>
#include <functional>
#include <map>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace loom::test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kExample = LOOM_SOURCE_DIR "/examples/glove.toml";

struct PtyRun {
  int status = -1;
  bool timed_out = false;
  std::string bytes;   // everything the terminal received
};

// Runs argv with a pseudo-terminal as its stdin, stdout and stderr (80 columns is not
// assumed: the bar is shorter than a line either way). `on_output` sees the bytes so far
// after every read, and the terminal's master side, where it may type (Ctrl-C: "\x03").
PtyRun run_in_pty(const std::vector<std::string>& argv, const std::vector<std::string>& env,
                  std::chrono::milliseconds limit,
                  const std::function<void(const std::string&, int master)>& on_output = {}) {
  PtyRun result;
  int master = -1;
  struct winsize ws {};
  ws.ws_row = 50;
  ws.ws_col = 200;
  const pid_t pid = ::forkpty(&master, nullptr, nullptr, &ws);
  if (pid < 0) {
    ADD_FAILURE() << "forkpty failed";
    return result;
  }
  if (pid == 0) {
    for (const std::string& e : env) ::putenv(const_cast<char*>(e.c_str()));
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::_Exit(127);
  }
  const auto deadline = std::chrono::steady_clock::now() + limit;
  char buf[4096];
  while (true) {
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left <= 0ms) {
      result.timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    struct pollfd p {master, POLLIN, 0};
    const int ready = ::poll(&p, 1, static_cast<int>(std::min<int64_t>(left.count(), 100)));
    if (ready > 0) {
      const ssize_t n = ::read(master, buf, sizeof buf);
      if (n <= 0) break;   // EIO: every process holding the terminal has closed it
      result.bytes.append(buf, static_cast<size_t>(n));
    }
    if (on_output) on_output(result.bytes, master);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  ::close(master);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return result;
}

// Replays terminal output the way a terminal shows it and returns the lines left on the
// screen: '\r' moves to column 0, "\x1b[K" erases to the end of the line, '\n' ends a line
// (the pty's ONLCR turns "\n" into "\r\n"), printable bytes overwrite at the cursor.
std::vector<std::string> screen_lines(const std::string& bytes) {
  std::vector<std::string> lines;
  std::string line;
  size_t col = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    const char c = bytes[i];
    if (c == '\r') {
      col = 0;
    } else if (c == '\n') {
      lines.push_back(line);
      line.clear();
      col = 0;
    } else if (c == '\x1b' && bytes.compare(i, 3, "\x1b[K") == 0) {
      line.resize(std::min(line.size(), col));
      i += 2;
    } else {
      if (col < line.size()) {
        line[col] = c;
      } else {
        line.push_back(c);
      }
      ++col;
    }
  }
  if (!line.empty()) lines.push_back(line);
  return lines;
}

// Where the first rank prefix ("[r0/1]", "[r?/?]") at or after `from` starts, or npos.
size_t rank_prefix_at(const std::string& line, size_t from) {
  static const std::regex prefix("\\[r[0-9?]+/[0-9?]+\\]");
  std::smatch m;
  const std::string rest = line.substr(std::min(from, line.size()));
  return std::regex_search(rest, m, prefix) ? from + static_cast<size_t>(m.position(0)) : std::string::npos;
}

std::string joined(const std::vector<std::string>& lines) {
  std::string out;
  for (const std::string& l : lines) out += l + "\n";
  return out;
}

// Every screen line that holds a log line ("[r0/1][glove] ...") starts with it; no line
// holds two log lines or a bar and a log line; the bar was drawn (it is in the bytes, with
// '\r') and epoch lines were logged while it was up.
void expect_bar_and_log_lines_apart(const PtyRun& r, int np) {
  const std::vector<std::string> lines = screen_lines(r.bytes);
  const std::string prefix = "[r0/" + std::to_string(np) + "]";
  int epoch_lines = 0;
  for (const std::string& line : lines) {
    // A rank prefix ("[r0/1]"), not any "[r" ("[run]" in the resolved config).
    const size_t at = rank_prefix_at(line, 0);
    if (at == std::string::npos) continue;
    EXPECT_EQ(at, 0u) << "a log line that does not start its line: '" << line << "'\nscreen:\n" << joined(lines);
    EXPECT_EQ(rank_prefix_at(line, 1), std::string::npos) << "two log lines on one line: '" << line << "'";
    EXPECT_EQ(line.find("elapsed"), std::string::npos) << "the bar and a log line on one line: '" << line << "'";
    if (line.rfind(prefix + "[glove] epoch ", 0) == 0) ++epoch_lines;
  }
  EXPECT_GE(epoch_lines, 3) << joined(lines);
  EXPECT_NE(r.bytes.find("\r[#"), std::string::npos) << "no live bar was drawn:\n" << joined(lines);
  EXPECT_NE(r.bytes.find("\x1b[K"), std::string::npos);
}

std::vector<std::string> tiny_glove(const std::string& run_dir) {
  return {"train", kExample, "--set", "run.dir=" + run_dir, "--set", "corpus.synthetic_sentences=3000",
          "--set", "glove.epochs=4", "--set", "glove.dim=8", "--set", "eval.every_epochs=0",
          "--set", "checkpoint.every_steps=0", "--set", "glove.step_nnz=512", "--set", "progress.bar=auto"};
}

TEST(Terminal, LogLinesPrintAboveTheBarNotBesideIt) {
  TempDir dir;
  const PtyRun r = run_in_pty(loom_cmd(1, tiny_glove(dir.file("run"))), {}, 300s);
  ASSERT_FALSE(r.timed_out) << r.bytes;
  ASSERT_EQ(r.status, 0) << r.bytes;
  expect_bar_and_log_lines_apart(r, 1);
}

TEST(Terminal, UnderMpirunRankZeroDrawsTheBar) {
  TempDir dir;
  const PtyRun r = run_in_pty(loom_cmd(2, tiny_glove(dir.file("run"))), {}, 300s);
  ASSERT_FALSE(r.timed_out) << r.bytes;
  ASSERT_EQ(r.status, 0) << r.bytes;
  expect_bar_and_log_lines_apart(r, 2);
}

// Ctrl-C typed at the terminal of `loom mpirun` (launch/cli/cli_mpirun.cpp) reaches only the
// launcher (the foreground process group; mpirun and the ranks are in groups of their own):
// the ranks stop on the SIGUSR1 it passes on, not on a SIGINT of their own, and the launcher
// exits 130. mpirun, outside the foreground group, still draws rank 0's bar on the terminal,
// and does not stop on it (its standard input is /dev/null, not the terminal).
TEST(Terminal, CtrlCUnderLoomMpirunReachesOnlyTheLauncher) {
  TempDir dir;
  std::vector<std::string> cmd = {loom_binary(), "mpirun"};
  const std::vector<std::string> prefix = mpirun_prefix(2);
  cmd.insert(cmd.end(), prefix.begin() + 1, prefix.end());
  cmd.push_back("--");
  for (const std::string& a : tiny_glove(dir.file("run"))) cmd.push_back(a);
  cmd.insert(cmd.end(), {"--set", "checkpoint.every_steps=1"});
  bool typed = false;
  // Rank 0 is held 1 s in its first checkpoint write, so Ctrl-C lands early in the run.
  const PtyRun r = run_in_pty(cmd, {"LOOM_FAULT_CHECKPOINT_PAUSE_MS=1000", "LOOM_FAULT_CHECKPOINT_PHASE=latest"}, 300s,
                              [&](const std::string& bytes, int master) {
    if (typed || bytes.find("loom fault injection: paused at latest") == std::string::npos) return;
    typed = ::write(master, "\x03", 1) == 1;
  });
  ASSERT_FALSE(r.timed_out) << r.bytes;
  ASSERT_TRUE(typed) << r.bytes;
  EXPECT_EQ(r.status, 130) << r.bytes;
  EXPECT_NE(r.bytes.find("loom mpirun: SIGINT received, asked the ranks to stop"), std::string::npos) << r.bytes;
  EXPECT_NE(r.bytes.find("[r0/2][train] stop requested (signal 10)"), std::string::npos) << r.bytes;
  EXPECT_EQ(r.bytes.find("stop requested (signal 2)"), std::string::npos) << "Ctrl-C reached the ranks:\n" << r.bytes;
  EXPECT_NE(r.bytes.find("] step 1/"), std::string::npos) << "no bar drawn:\n" << r.bytes;
}

TEST(Terminal, WithoutATerminalProgressIsPlainLines) {
  TempDir dir;
  const RunResult r = run(loom_cmd(1, tiny_glove(dir.file("run"))), 300s);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err.find('\r'), std::string::npos) << "a bar drawn into a pipe";
  EXPECT_EQ(r.err.find("\x1b["), std::string::npos);
  EXPECT_NE(r.err.find("[progress] finished step "), std::string::npos) << r.err;
}

// One GET over a fresh connection to 127.0.0.1:port; the body, or "" on any failure.
std::string http_get(int port, const std::string& path) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return {};
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string reply;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    const std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
      char buf[4096];
      for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) reply.append(buf, static_cast<size_t>(n));
    }
  }
  ::close(fd);
  const size_t body = reply.find("\r\n\r\n");
  if (reply.rfind("HTTP/1.1 200", 0) != 0 || body == std::string::npos) return {};
  return reply.substr(body + 4);
}

// A corpus of `lines` lines of words w0..w199, the same every time.
std::string make_corpus(const std::string& path, int lines) {
  std::string text;
  uint32_t x = 12345;
  for (int i = 0; i < lines; ++i) {
    for (int w = 0; w < 12; ++w) {
      x = x * 1103515245u + 12345u;
      text += (w ? " w" : "w") + std::to_string((x >> 16) % 200);
    }
    text += '\n';
  }
  write_file(path, text);
  return text;
}

TEST(Terminal, StatusAnswersDuringTheDataStages) {
  TempDir dir;
  const std::string corpus = dir.file("corpus.txt");
  const int64_t corpus_bytes = static_cast<int64_t>(make_corpus(corpus, 20000).size());
  const std::vector<std::string> args = {
      "train", kExample, "--set", "run.dir=" + dir.file("run"), "--set", "corpus.synthetic=false",
      "--set", "corpus.paths=[\"" + corpus + "\"]", "--set", "glove.epochs=1", "--set", "glove.dim=8",
      "--set", "eval.every_epochs=0", "--set", "vocab.min_count=1", "--set", "status.port=0"};
  int port = -1;
  std::map<std::string, nlohmann::json> seen;   // stage -> the last /status of it
  const std::regex listening(R"(listening on http://127\.0\.0\.1:(\d+))");
  const PtyRun r = run_in_pty(loom_cmd(1, args), {"LOOM_FAULT_STAGE_PAUSE_MS=1500"}, 300s,
                              [&](const std::string& bytes, int) {
    std::smatch m;
    if (port < 0 && std::regex_search(bytes, m, listening)) port = std::stoi(m[1]);
    if (port < 0) return;
    const std::string body = http_get(port, "/status");
    if (body.empty()) return;
    const auto j = nlohmann::json::parse(body, nullptr, false);
    if (!j.is_discarded() && j.contains("stage")) seen[j["stage"].get<std::string>()] = j;
  });
  ASSERT_FALSE(r.timed_out) << r.bytes;
  ASSERT_EQ(r.status, 0) << r.bytes;
  ASSERT_GT(port, 0) << "no 'listening on' line:\n" << r.bytes;
  // The server was up before the vocabulary: its line comes first.
  const size_t listen_at = r.bytes.find("listening on http://"), vocab_at = r.bytes.find("[r0/1][vocab]");
  ASSERT_NE(vocab_at, std::string::npos) << r.bytes;
  EXPECT_LT(listen_at, vocab_at) << r.bytes;
  for (const char* stage : {"vocab", "cooccur"}) {
    ASSERT_TRUE(seen.count(stage)) << "/status never named the " << stage << " stage; it named:"
                                   << [&] { std::string s; for (auto& [k, v] : seen) s += " " + k; return s; }();
    const nlohmann::json& j = seen[stage];
    ASSERT_TRUE(j["stage_progress"].is_object()) << j.dump();
    // One rank reads the whole corpus once per stage; the pause holds the finished stage.
    EXPECT_EQ(j["stage_progress"]["total"], corpus_bytes) << stage << ": " << j.dump();
    EXPECT_EQ(j["stage_progress"]["done"], corpus_bytes) << stage << ": " << j.dump();
    EXPECT_EQ(j["stage_progress"]["unit"], "B") << j.dump();
    EXPECT_EQ(j["step"], 0) << j.dump();
    // The terminal showed the stage too: a live bar of rank 0's share, redrawn in place
    // ("\r[####...] vocab 100.0% | ... B/s | eta 0s | elapsed 1s"), then taken down.
    EXPECT_TRUE(std::regex_search(r.bytes, std::regex(std::string("\r\\[[#-]{20}\\] ") + stage +
                                                      " [0-9.]+% \\| [0-9.]+[kMG]? ?B/s \\| eta ")))
        << "no live bar for the " << stage << " stage:\n" << r.bytes;
  }
}

// Note [Step numbers] as a user meets it: while `loom train` writes its checkpoint of step
// N (held there by LOOM_FAULT_CHECKPOINT_PAUSE_MS at the point where step_N.h5 is complete),
// /status's step, /metrics' loom_steps_total (a counter) and metrics.jsonl's last line all
// say N, with the same epoch and learning rate; the checkpoint's own step attribute is N
// (`loom inspect`). At the second checkpoint the counters say one checkpoint was written
// before it, and which.
TEST(Terminal, OneStepNumberInMetricsCheckpointsStatusAndPrometheus) {
  TempDir dir;
  const std::string run_dir = dir.file("run");
  Process p(loom_cmd(1, {"train", kExample, "--set", "run.dir=" + run_dir, "--set", "corpus.synthetic_sentences=3000",
                         "--set", "glove.epochs=4", "--set", "glove.dim=8", "--set", "eval.every_epochs=0",
                         "--set", "checkpoint.every_steps=10", "--set", "checkpoint.keep_last=10", "--set", "status.port=0"}),
            {"LOOM_FAULT_CHECKPOINT_PAUSE_MS=2500", "LOOM_FAULT_CHECKPOINT_PHASE=latest"});
  ASSERT_TRUE(wait_for_output(p, "listening on http://127.0.0.1:", 120s)) << p.err();
  std::smatch m;
  const std::string head = p.err();
  ASSERT_TRUE(std::regex_search(head, m, std::regex(R"(listening on http://127\.0\.0\.1:(\d+))"))) << head;
  const int port = std::stoi(m[1]);
  const std::string pause = "loom fault injection: paused at latest of ";
  const auto pauses = [&] {
    std::vector<int64_t> steps;
    const std::string err = p.err();
    const std::regex at(pause + R"([^\n]*/step_(\d+)\.h5)");
    for (auto it = std::sregex_iterator(err.begin(), err.end(), at); it != std::sregex_iterator(); ++it)
      steps.push_back(std::stoll((*it)[1]));
    return steps;
  };
  // /metrics as name -> value (the sample lines), and each name's # TYPE.
  const auto prometheus = [](const std::string& text, std::map<std::string, std::string>* type) {
    std::map<std::string, double> values;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      std::istringstream words(line);
      std::string a, b, c;
      words >> a >> b >> c;
      if (a == "#" && b == "TYPE") (*type)[c] = line.substr(line.rfind(' ') + 1);
      else if (!a.empty() && a[0] != '#') values[a] = std::stod(b);
    }
    return values;
  };
  for (size_t n = 1; n <= 2; ++n) {
    SCOPED_TRACE("checkpoint " + std::to_string(n));
    ASSERT_TRUE(wait_until([&] { return pauses().size() >= n; }, 120s, &p)) << p.err();
    const int64_t step = pauses()[n - 1];
    const auto status = nlohmann::json::parse(http_get(port, "/status"), nullptr, false);
    std::map<std::string, std::string> type;
    const std::map<std::string, double> metrics = prometheus(http_get(port, "/metrics"), &type);
    const std::string jsonl = read_file(run_dir + "/metrics.jsonl");
    const std::string last_line = jsonl.substr(jsonl.rfind('\n', jsonl.size() - 2) + 1);
    const auto last = nlohmann::json::parse(last_line, nullptr, false);
    ASSERT_TRUE(p.running()) << "the pause ended before the probes: " << p.err();
    ASSERT_FALSE(status.is_discarded());
    ASSERT_FALSE(last.is_discarded()) << last_line;
    EXPECT_EQ(status["step"], step) << status.dump();
    EXPECT_EQ(last["step"], step) << last_line;
    EXPECT_EQ(metrics.at("loom_steps_total"), double(step));
    EXPECT_EQ(status["epoch"], last["epoch"]) << status.dump() << "\n" << last_line;
    EXPECT_EQ(metrics.at("loom_epoch"), last["epoch"].get<double>());
    EXPECT_EQ(status["lr"].get<double>(), last["lr"].get<double>()) << status.dump() << "\n" << last_line;
    EXPECT_EQ(metrics.at("loom_learning_rate"), last["lr"].get<double>());
    EXPECT_EQ(status["checkpoints_written"], n - 1) << status.dump();
    EXPECT_EQ(metrics.at("loom_checkpoints_written_total"), double(n - 1));
    EXPECT_GT(metrics.at("loom_items_total"), 0);
    EXPECT_EQ(metrics.at("loom_items_total"), status["items_total"].get<double>());
    for (const char* counter : {"loom_steps_total", "loom_items_total", "loom_checkpoints_written_total"})
      EXPECT_EQ(type[counter], "counter") << counter;
    EXPECT_EQ(type["loom_loss"], "gauge");
    if (n == 2) {
      EXPECT_EQ(metrics.at("loom_last_checkpoint_step"), double(pauses()[0]));
      char first[32];
      std::snprintf(first, sizeof first, "/step_%08lld.h5", static_cast<long long>(pauses()[0]));
      EXPECT_EQ(status["last_checkpoint"]["step"], pauses()[0]) << status.dump();
      EXPECT_EQ(status["last_checkpoint"]["path"], run_dir + "/checkpoints" + first) << status.dump();
    }
  }
  ASSERT_TRUE(p.wait_for(300s)) << p.err();
  ASSERT_EQ(p.exit_status(), 0) << p.err();
  for (int64_t step : pauses()) {
    char name[32];
    std::snprintf(name, sizeof name, "/step_%08lld.h5", static_cast<long long>(step));
    const RunResult inspect = run({loom_binary(), "inspect", run_dir + "/checkpoints" + name}, 60s);
    EXPECT_NE(inspect.out.find(", step " + std::to_string(step) + ", epoch "), std::string::npos) << inspect.out;
  }
}

}  // namespace
}  // namespace loom::test
