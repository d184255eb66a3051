// Issue 20's failure modes that a hostile user's inputs reach, tried on the real `loom`
// binary: a 100 MB line and a 50 MB token (vocab, cooccur, word2vec) within a stated
// memory bound, the status server probed while `loom train` runs, and the lines of two
// ranks in one stream.
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/test_support.h"

namespace loom::test {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
namespace fs = std::filesystem;

const std::string kGlove = std::string(LOOM_SOURCE_DIR) + "/examples/glove.toml";
const std::string kWord2vec = std::string(LOOM_SOURCE_DIR) + "/examples/word2vec.toml";

std::string corpus_paths(const std::string& path) { return "corpus.paths=[\"" + path + "\"]"; }

// `loom SUBCOMMAND CONFIG --set ...` at np 1.
std::vector<std::string> loom_args(const std::string& sub, const std::string& config,
                                   const std::vector<std::string>& sets) {
  std::vector<std::string> args = {loom_binary(), sub, config};
  for (const std::string& s : sets) args.insert(args.end(), {"--set", s});
  return args;
}

// ---- peak RSS of one child ----------------------------------------------------------------

// A run of one process (no mpirun: its own peak RSS is the rank's), its stderr captured,
// and its peak resident set from wait4 (ru_maxrss of that child alone, in KiB; getrusage
// RUSAGE_CHILDREN would be the largest of every child this test ever waited for).
struct Measured {
  int status = -1;
  bool timed_out = false;
  long peak_rss_kib = 0;
  std::string err;
};

Measured run_measured(const std::vector<std::string>& argv, std::chrono::milliseconds timeout) {
  TempDir dir;
  const std::string err_path = dir.file("stderr");
  Measured m;
  const pid_t pid = ::fork();
  if (pid == 0) {
    const int null = ::open("/dev/null", O_WRONLY);
    const int err = ::open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(null, STDOUT_FILENO);
    ::dup2(err, STDERR_FILENO);
    std::vector<char*> args;
    for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    ::_exit(127);
  }
  const auto deadline = Clock::now() + timeout;
  int st = 0;
  rusage ru{};
  for (;;) {
    const pid_t r = ::wait4(pid, &st, WNOHANG, &ru);
    if (r == pid) break;
    if (Clock::now() > deadline) {
      ::kill(pid, SIGKILL);
      ::wait4(pid, &st, 0, &ru);
      m.timed_out = true;
      break;
    }
    std::this_thread::sleep_for(20ms);
  }
  m.status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
  m.peak_rss_kib = ru.ru_maxrss;
  m.err = read_file(err_path);
  return m;
}

// Note [The memory bound of a long line]
// A rank reads its shard through 3 buffers of corpus read_buffer_bytes (4 MiB), whatever
// the lines; finding a shard boundary reads a window of corpus.max_line_bytes, and the
// co-occurrence counter's look-back before a shard reads at most as much again. So a run
// over a corpus with a 100 MB line (or a 50 MB token) may hold at most a few
// max_line_bytes more than the same run without it: the bound asserted is
//   peak RSS (with the line) - peak RSS (without it) <= 4 x max_line_bytes + 16 MiB,
// 20 MiB at the default 1 MiB, where the 16 MiB cover the model's own share of the extra
// words (word2vec keeps 4 bytes per word of the corpus: 1.05 M words of the line are
// 4.2 MB) and allocator slack. A line or token held whole would add 50-100 MiB or more.
constexpr long kMaxLineBytes = 1 << 20;
constexpr long kBoundKiB = (4 * kMaxLineBytes + (16L << 20)) / 1024;

void expect_bounded(const Measured& base, const Measured& big, const std::string& what) {
  std::printf("%-36s peak RSS %7.1f MiB (without the long input %7.1f MiB, bound +%.0f MiB)\n", what.c_str(),
              big.peak_rss_kib / 1024.0, base.peak_rss_kib / 1024.0, kBoundKiB / 1024.0);
  EXPECT_GT(base.peak_rss_kib, 0) << what;
  EXPECT_LE(big.peak_rss_kib - base.peak_rss_kib, kBoundKiB)
      << what << ": the long input raised the peak RSS from " << base.peak_rss_kib << " KiB to "
      << big.peak_rss_kib << " KiB";
}

// ---- corpora written as a stream -----------------------------------------------------------

struct Planted {
  std::string head, tail;   // the planted text split at a line end near its middle
  int64_t head_lines = 0;
};

Planted planted(const TempDir& dir, int sentences) {
  const std::string path = dir.file("planted.txt");
  RunResult g = run({loom_binary(), "generate-corpus", path, "--sentences", std::to_string(sentences)}, 60s);
  if (g.status != 0) throw std::runtime_error("generate-corpus failed: " + g.out + g.err);
  const std::string text = read_file(path);
  Planted p;
  const size_t at = text.find('\n', text.size() / 2) + 1;
  p.head = text.substr(0, at);
  p.tail = text.substr(at);
  p.head_lines = std::count(p.head.begin(), p.head.end(), '\n');
  return p;
}

// 16 words of 99 bytes: a 100 MiB line of them is 1.05 M tokens, few enough for word2vec
// to train on in seconds, each far below the 4 MiB buffer.
std::string long_word(int k) { return std::string(98, static_cast<char>('a' + k)) + std::to_string(k % 10); }

// head, then one line of `line_bytes` bytes (words of long_word() separated by single
// spaces, drawn from a fixed seed), then tail; written 1 MiB at a time. Returns the count
// of each word in the line.
std::map<std::string, int64_t> write_long_line(const std::string& path, const Planted& p, int64_t line_bytes) {
  std::ofstream out(path, std::ios::binary);
  out << p.head;
  std::map<std::string, int64_t> counts;
  std::mt19937 gen(20);
  std::string block;
  int64_t written = 0;
  while (written < line_bytes) {
    block.clear();
    while (block.size() < (size_t{1} << 20) && written + static_cast<int64_t>(block.size()) + 100 <= line_bytes) {
      const std::string w = long_word(static_cast<int>(gen() % 16));
      ++counts[w];
      block += w;
      block += ' ';
    }
    if (block.empty()) break;
    out << block;
    written += static_cast<int64_t>(block.size());
  }
  out << '\n' << p.tail;
  if (!out) throw std::runtime_error("cannot write " + path);
  return counts;
}

// head, a token of `token_bytes` 'z's, a newline, tail; the token's byte offset returned.
int64_t write_long_token(const std::string& path, const Planted& p, int64_t token_bytes) {
  std::ofstream out(path, std::ios::binary);
  out << p.head;
  const std::string block(size_t{1} << 20, 'z');
  for (int64_t left = token_bytes; left > 0; left -= static_cast<int64_t>(block.size()))
    out.write(block.data(), static_cast<std::streamsize>(std::min<int64_t>(left, static_cast<int64_t>(block.size()))));
  out << '\n' << p.tail;
  if (!out) throw std::runtime_error("cannot write " + path);
  return static_cast<int64_t>(p.head.size());
}

std::map<std::string, int64_t> read_vocab(const std::string& path) {
  std::map<std::string, int64_t> v;
  std::istringstream in(read_file(path));
  std::string w;
  int64_t c = 0;
  while (in >> w >> c) v[w] = c;
  return v;
}

int64_t tokens_of(const std::string& text) {
  std::istringstream in(text);
  std::string w;
  int64_t n = 0;
  while (in >> w) ++n;
  return n;
}

// The first integer captured by `re` in `text`, or -1.
int64_t captured(const std::string& text, const std::string& re) {
  std::smatch m;
  return std::regex_search(text, m, std::regex(re)) ? std::stoll(m[1]) : -1;
}

// ---- a 100 MB line ----------------------------------------------------------------------

// loom's policy for a line longer than corpus.max_line_bytes is to read it as what it is, a
// stream of tokens (text8 is one 100 MB line): shard boundaries fall at whitespace inside
// it, word2vec cuts it into sentences of 1000 words. So the clear outcome is exact: every
// token of the line counted once (no token split, none lost), by `loom vocab`, by `loom
// cooccur` and by word2vec's `loom train`, each within the bound of Note [The memory bound
// of a long line] against the same command on the corpus without the line.
TEST(LongLine, HundredMegabyteLineIsReadWholeInBoundedMemory) {
  TempDir dir;
  const Planted p = planted(dir, 2000);
  const std::string small = dir.file("small.txt"), big = dir.file("long-line.txt");
  write_file(small, p.head + p.tail);
  const auto line_counts = write_long_line(big, p, int64_t{100} << 20);
  ASSERT_GE(fs::file_size(big), uint64_t{100} << 20);
  int64_t line_tokens = 0;
  for (const auto& [w, c] : line_counts) line_tokens += c;
  const int64_t planted_tokens = tokens_of(p.head + p.tail);
  const std::string limit = "corpus.max_line_bytes=" + std::to_string(kMaxLineBytes);

  auto sets = [&](const std::string& corpus, const std::string& run_dir) {
    return std::vector<std::string>{"corpus.synthetic=false", corpus_paths(corpus), "run.dir=" + run_dir, limit,
                                    "word2vec.epochs=1", "eval.every_epochs=0", "progress.interval_s=30"};
  };
  // vocab, then cooccur in the same run directory (which reuses the vocabulary).
  const Measured vocab_base = run_measured(loom_args("vocab", kGlove, sets(small, dir.file("base"))), 120s);
  const Measured vocab_big = run_measured(loom_args("vocab", kGlove, sets(big, dir.file("big"))), 120s);
  ASSERT_EQ(vocab_base.status, 0) << vocab_base.err;
  ASSERT_EQ(vocab_big.status, 0) << vocab_big.err;
  const auto base_vocab = read_vocab(dir.file("base/vocab.txt"));
  const auto vocab = read_vocab(dir.file("big/vocab.txt"));
  for (const auto& [w, c] : line_counts) EXPECT_EQ(vocab.count(w) ? vocab.at(w) : 0, c) << w.substr(0, 12) << "...";
  for (const auto& [w, c] : base_vocab) EXPECT_EQ(vocab.count(w) ? vocab.at(w) : 0, c) << w;
  EXPECT_EQ(vocab.size(), base_vocab.size() + line_counts.size()) << "pieces of words reached vocab.txt";
  expect_bounded(vocab_base, vocab_big, "loom vocab");

  const Measured co_base = run_measured(loom_args("cooccur", kGlove, sets(small, dir.file("base"))), 120s);
  const Measured co_big = run_measured(loom_args("cooccur", kGlove, sets(big, dir.file("big"))), 120s);
  ASSERT_EQ(co_base.status, 0) << co_base.err;
  ASSERT_EQ(co_big.status, 0) << co_big.err;
  EXPECT_EQ(captured(co_big.err, "\\[cooccur\\] (\\d+) tokens, "), planted_tokens + line_tokens) << co_big.err;
  expect_bounded(co_base, co_big, "loom cooccur");

  const Measured w2v_base = run_measured(loom_args("train", kWord2vec, sets(small, dir.file("w2v-base"))), 120s);
  const Measured w2v_big = run_measured(loom_args("train", kWord2vec, sets(big, dir.file("w2v-big"))), 180s);
  ASSERT_EQ(w2v_base.status, 0) << w2v_base.err;
  ASSERT_EQ(w2v_big.status, 0) << w2v_big.err;
  EXPECT_EQ(captured(w2v_big.err, "in the vocabulary, (\\d+) words per epoch"), planted_tokens + line_tokens)
      << w2v_big.err;
  EXPECT_TRUE(fs::exists(dir.file("w2v-big/vectors.txt")));
  expect_bounded(w2v_base, w2v_big, "loom train (word2vec)");
}

// The same 100 MiB line made of words outside the vocabulary (262,144 distinct words, each
// 4 times, below vocab.min_count = 5), counted by `loom cooccur` on 2 threads: the second
// thread's sub-shard starts inside the line, and the co-occurrence counter looks back for
// the window's first words. Used to: with none kept in the line it looked back 4x farther
// each time up to the line's start, reading the whole line into memory (its look-back is
// now at most corpus.max_line_bytes). Measured against the corpus without the line.
TEST(LongLine, OutOfVocabularyLineIsNotReadBackWhole) {
  TempDir dir;
  const Planted p = planted(dir, 2000);
  const std::string small = dir.file("small.txt"), big = dir.file("long-line.txt");
  write_file(small, p.head + p.tail);
  {
    std::ofstream out(big, std::ios::binary);
    out << p.head;
    std::string block;
    for (int64_t i = 0; i < (int64_t{1} << 20); ++i) {
      const std::string n = std::to_string(1000000 + i / 4);
      block += std::string(92, 'q') + n + ' ';   // 100 bytes
      if (block.size() >= (size_t{1} << 20)) {
        out << block;
        block.clear();
      }
    }
    out << block << '\n' << p.tail;
    ASSERT_TRUE(out.good());
  }
  auto sets = [&](const std::string& corpus, const std::string& run_dir) {
    return std::vector<std::string>{"corpus.synthetic=false", corpus_paths(corpus), "run.dir=" + run_dir,
                                    "corpus.max_line_bytes=" + std::to_string(kMaxLineBytes), "vocab.min_count=5",
                                    "run.threads=2"};
  };
  for (const char* which : {"base", "big"}) {
    const std::string run_dir = dir.file(which);
    ASSERT_EQ(run(loom_args("vocab", kGlove, sets(which == std::string("base") ? small : big, run_dir)), 120s).status, 0);
  }
  EXPECT_EQ(read_vocab(dir.file("big/vocab.txt")), read_vocab(dir.file("base/vocab.txt"))) << "the line's words are kept";
  const Measured base = run_measured(loom_args("cooccur", kGlove, sets(small, dir.file("base"))), 120s);
  const Measured m = run_measured(loom_args("cooccur", kGlove, sets(big, dir.file("big"))), 120s);
  ASSERT_EQ(base.status, 0) << base.err;
  ASSERT_EQ(m.status, 0) << m.err;
  EXPECT_EQ(captured(m.err, "\\[cooccur\\] (\\d+) tokens, "), tokens_of(p.head + p.tail) + (int64_t{1} << 20)) << m.err;
  // The same pairs as without the line: no window reaches across 100 MiB of unkept words.
  EXPECT_EQ(captured(m.err, "tokens, (\\d+) non-zeros"), captured(base.err, "tokens, (\\d+) non-zeros")) << m.err;
  expect_bounded(base, m, "loom cooccur (line of unkept words)");
}

// ---- a 50 MB token ----------------------------------------------------------------------

// A 50 MB token (no whitespace) without a token limit is an error naming the file, the
// byte offset, the line and the key (corpus.max_token_bytes), from `loom vocab` and
// word2vec's `loom train`; with a limit it is one token truncated to it, counted and
// reported, for vocab, cooccur and word2vec - never pieces. Each within the bound of
// Note [The memory bound of a long line].
TEST(LongToken, FiftyMegabyteTokenIsAnErrorOrOneReportedTruncation) {
  TempDir dir;
  const Planted p = planted(dir, 2000);
  const std::string small = dir.file("small.txt"), big = dir.file("long-token.txt");
  write_file(small, p.head + p.tail);
  const int64_t at = write_long_token(big, p, int64_t{50} << 20);
  const int64_t planted_tokens = tokens_of(p.head + p.tail);
  auto sets = [&](const std::string& corpus, const std::string& run_dir, int max_token) {
    return std::vector<std::string>{"corpus.synthetic=false", corpus_paths(corpus), "run.dir=" + run_dir,
                                    "corpus.max_line_bytes=" + std::to_string(kMaxLineBytes),
                                    "corpus.max_token_bytes=" + std::to_string(max_token), "word2vec.epochs=1",
                                    "eval.every_epochs=0", "progress.interval_s=30"};
  };
  const std::string where = big + ":" + std::to_string(at) + " (byte offset; line " +
                            std::to_string(p.head_lines + 1) + ")";

  for (const auto& [sub, config] : {std::pair{"vocab", kGlove}, std::pair{"train", kWord2vec}}) {
    SCOPED_TRACE(std::string("strict ") + sub);
    const Measured m = run_measured(loom_args(sub, config, sets(big, dir.file(std::string("strict-") + sub), 0)), 120s);
    ASSERT_FALSE(m.timed_out);
    EXPECT_EQ(m.status, 1) << m.err;
    EXPECT_NE(m.err.find("token longer than"), std::string::npos) << m.err;
    EXPECT_NE(m.err.find(where), std::string::npos) << "expected " << where << " in:\n" << m.err;
    EXPECT_NE(m.err.find("corpus.max_token_bytes"), std::string::npos) << m.err;
    EXPECT_FALSE(fs::exists(dir.file(std::string("strict-") + sub + "/vocab.txt")));
  }

  const std::string reported = "1 tokens longer than corpus.max_token_bytes = 100 bytes truncated";
  struct Case {
    const char* sub;
    std::string config;
  };
  for (const Case& c : {Case{"vocab", kGlove}, Case{"cooccur", kGlove}, Case{"train", kWord2vec}}) {
    SCOPED_TRACE(std::string("limited ") + c.sub);
    const std::string run_dir = dir.file(std::string("limited-") + c.sub);
    const Measured base = run_measured(loom_args(c.sub, c.config, sets(small, run_dir + "-base", 100)), 120s);
    const Measured m = run_measured(loom_args(c.sub, c.config, sets(big, run_dir, 100)), 120s);
    ASSERT_EQ(base.status, 0) << base.err;
    ASSERT_EQ(m.status, 0) << m.err;
    EXPECT_NE(m.err.find(reported), std::string::npos) << m.err;
    const auto vocab = read_vocab(run_dir + "/vocab.txt");
    EXPECT_EQ(vocab.count(std::string(100, 'z')) ? vocab.at(std::string(100, 'z')) : 0, 1) << "the truncated token, once";
    EXPECT_EQ(vocab.size(), read_vocab(run_dir + "-base/vocab.txt").size() + 1) << "pieces of the token reached vocab.txt";
    if (std::string(c.sub) == "cooccur") {
      EXPECT_EQ(captured(m.err, "\\[cooccur\\] (\\d+) tokens, "), planted_tokens + 1) << m.err;
    }
    if (std::string(c.sub) == "train") {
      EXPECT_EQ(captured(m.err, "in the vocabulary, (\\d+) words per epoch"), planted_tokens + 1) << m.err;
    }
    expect_bounded(base, m, std::string("loom ") + c.sub + " (50 MB token)");
  }
}

// ---- the status server under a running `loom train` ------------------------------------------

class Client {
 public:
  explicit Client(const std::string& host, int port, std::chrono::milliseconds recv_timeout = 20s) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    timeval tv{};
    tv.tv_sec = static_cast<time_t>(recv_timeout.count() / 1000);
    tv.tv_usec = static_cast<suseconds_t>((recv_timeout.count() % 1000) * 1000);
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ::setsockopt(fd_, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(static_cast<uint16_t>(port));
    ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
    connect_errno_ = connected_ ? 0 : errno;
  }
  ~Client() {
    if (fd_ >= 0) ::close(fd_);
  }
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;
  bool connected() const { return connected_; }
  int connect_errno() const { return connect_errno_; }
  bool send_all(const std::string& data) {
    for (size_t done = 0; done < data.size();) {
      const ssize_t n = ::send(fd_, data.data() + done, data.size() - done, MSG_NOSIGNAL);
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }
  // What arrives until the server closes (true; a reset counts) or the timeout (false).
  bool read_to_eof(std::string& out) {
    char buf[4096];
    for (;;) {
      const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
      if (n == 0) return true;
      if (n < 0) return errno == ECONNRESET || errno == EPIPE;
      out.append(buf, static_cast<size_t>(n));
    }
  }

 private:
  int fd_ = -1;
  bool connected_ = false;
  int connect_errno_ = 0;
};

int reply_code(const std::string& raw) {
  return raw.rfind("HTTP/1.1 ", 0) == 0 && raw.size() >= 12 ? std::stoi(raw.substr(9, 3)) : 0;
}

std::string reply_body(const std::string& raw) {
  const size_t end = raw.find("\r\n\r\n");
  return end == std::string::npos ? "" : raw.substr(end + 4);
}

std::string http_exchange(int port, const std::string& request) {
  Client c("127.0.0.1", port);
  std::string raw;
  if (c.connected() && c.send_all(request)) c.read_to_eof(raw);
  return raw;
}

int listening_port(const std::string& err) {
  return static_cast<int>(captured(err, "\\[status\\] listening on http://127\\.0\\.0\\.1:(\\d+)"));
}

// The median of items_per_s over the training steps of metrics.jsonl.
double median_rate(const std::string& metrics) {
  std::vector<double> rates;
  std::istringstream in(read_file(metrics));
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_object() && j.contains("step") && j.contains("items_per_s")) rates.push_back(j["items_per_s"].get<double>());
  }
  if (rates.empty()) return 0;
  std::nth_element(rates.begin(), rates.begin() + static_cast<std::ptrdiff_t>(rates.size() / 2), rates.end());
  return rates[rates.size() / 2];
}

std::vector<std::string> status_run(const std::string& run_dir, int epochs) {
  return loom_args("train", kWord2vec,
                   {"run.dir=" + run_dir, "word2vec.epochs=" + std::to_string(epochs), "eval.every_epochs=0",
                    "progress.interval_s=30", "status.port=0", "status.bind=127.0.0.1"});
}

// While word2vec trains (np 1, status.port = 0: an ephemeral port on 127.0.0.1, printed),
// the probe kinds of tests/launch/test_status_server.cpp reach its status server: a
// malformed request, a 1 MiB header, a silent client kept open, 100 clients at once and
// binary garbage. Each gets its answer, a valid /status meanwhile answers within 3 s with
// the training's state, the run ends with exit 0, and its median training rate stays at
// least half that of the same run unprobed (a generous bound: a loaded 2-core machine
// moves the rate by tens of percent between runs; a server that starved training by
// spinning on its clients would cost far more).
TEST(StatusUnderTraining, ProbesDoNotStopAnswersOrSlowTraining) {
  TempDir dir;
  constexpr int kEpochs = 8;
  const RunResult quiet = run(status_run(dir.file("quiet"), kEpochs), 300s);
  ASSERT_EQ(quiet.status, 0) << quiet.err;
  const double quiet_rate = median_rate(dir.file("quiet/metrics.jsonl"));

  const std::string run_dir = dir.file("probed");
  Process p(status_run(run_dir, kEpochs));
  ASSERT_TRUE(wait_for_output(p, "listening on http://127.0.0.1:", 120s)) << p.err();
  const int port = listening_port(p.err());
  ASSERT_GT(port, 0) << p.err();
  // Training has begun once metrics.jsonl has a step.
  ASSERT_TRUE(wait_until([&] { return read_file(run_dir + "/metrics.jsonl").find("\"step\"") != std::string::npos; },
                         120s, &p))
      << p.err();

  Client silent("127.0.0.1", port, 60s);   // connects, never sends; held open throughout
  ASSERT_TRUE(silent.connected());

  EXPECT_EQ(reply_code(http_exchange(port, "HELLO\r\n\r\n")), 400);
  std::string garbage;
  std::mt19937 gen(3);
  for (int i = 0; i < 2048; ++i) garbage += static_cast<char>(gen() % 256);
  garbage += "\r\n\r\n";
  EXPECT_EQ(reply_code(http_exchange(port, garbage)), 400);
  {
    // 1 MiB of header: the server answers 431 at its cap and closes; the rest of our send
    // may then fail (reset), which is fine; only a hang or a 200 would not be.
    Client big("127.0.0.1", port);
    ASSERT_TRUE(big.connected());
    big.send_all("GET /status HTTP/1.1\r\nX-Filler: " + std::string(size_t{1} << 20, 'a') + "\r\n\r\n");
    std::string raw;
    EXPECT_TRUE(big.read_to_eof(raw)) << "the server did not close a 1 MiB header";
    EXPECT_TRUE(raw.empty() || reply_code(raw) == 431) << raw.substr(0, 200);
  }
  {
    std::vector<std::unique_ptr<Client>> many;
    for (int i = 0; i < 100; ++i) {
      many.push_back(std::make_unique<Client>("127.0.0.1", port));
      ASSERT_TRUE(many.back()->connected()) << "client " << i;
      ASSERT_TRUE(many.back()->send_all("GET /status HTTP/1.1\r\n\r\n")) << "client " << i;
    }
    for (size_t i = 0; i < many.size(); ++i) {
      std::string raw;
      many[i]->read_to_eof(raw);
      ASSERT_EQ(reply_code(raw), 200) << "client " << i << " of 100 got: " << raw.substr(0, 200);
      many[i].reset();
    }
  }
  const auto t0 = Clock::now();
  const std::string raw = http_exchange(port, "GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
  const double answer_s = std::chrono::duration<double>(Clock::now() - t0).count();
  ASSERT_EQ(reply_code(raw), 200) << raw;
  const auto j = nlohmann::json::parse(reply_body(raw));
  EXPECT_EQ(j["stage"], "train") << j.dump();
  EXPECT_GT(j["step"].get<int64_t>(), 0) << j.dump();
  EXPECT_LT(answer_s, 3.0) << "a valid /status took " << answer_s << " s with a silent client connected";
  ASSERT_TRUE(p.running()) << "training ended before the probes did: lengthen the run\n" << p.err();

  ASSERT_TRUE(p.wait_for(300s)) << p.err();
  EXPECT_EQ(p.exit_status(), 0) << p.err();
  const double probed_rate = median_rate(run_dir + "/metrics.jsonl");
  std::printf("median training rate: unprobed %.0f words/s, probed %.0f words/s (%.2fx); /status answered in %.3f s\n",
              quiet_rate, probed_rate, probed_rate / quiet_rate, answer_s);
  EXPECT_GT(quiet_rate, 0);
  EXPECT_GE(probed_rate, 0.5 * quiet_rate);
}

// An IPv4 address of this host other than loopback (an interface that is up), or "".
std::string non_loopback_address() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return "";
  std::string found;
  for (ifaddrs* a = list; a && found.empty(); a = a->ifa_next) {
    if (!a->ifa_addr || a->ifa_addr->sa_family != AF_INET || (a->ifa_flags & IFF_LOOPBACK) || !(a->ifa_flags & IFF_UP))
      continue;
    char text[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ifa_addr)->sin_addr, text, sizeof(text));
    if (std::string(text).rfind("127.", 0) != 0) found = text;
  }
  ::freeifaddrs(list);
  return found;
}

// Bound to 127.0.0.1 (the default, set here explicitly), the status server of a running
// `loom train` answers on loopback and refuses a connection to another address of the host.
TEST(StatusUnderTraining, BoundToLoopbackRefusesOtherAddresses) {
  const std::string other = non_loopback_address();
  if (other.empty()) LOOM_SKIP_OR_FAIL("this host has no IPv4 address besides loopback (getifaddrs)");
  TempDir dir;
  const std::string run_dir = dir.file("run");
  Process p(status_run(run_dir, 4));
  ASSERT_TRUE(wait_for_output(p, "listening on http://127.0.0.1:", 120s)) << p.err();
  const int port = listening_port(p.err());
  ASSERT_GT(port, 0) << p.err();
  EXPECT_EQ(reply_code(http_exchange(port, "GET /status HTTP/1.1\r\n\r\n")), 200);
  Client outside(other, port, 10s);
  EXPECT_FALSE(outside.connected()) << "connected to " << other << ":" << port;
  EXPECT_EQ(outside.connect_errno(), ECONNREFUSED) << other << ":" << port << ": " << std::strerror(outside.connect_errno());
  ASSERT_TRUE(p.wait_for(300s)) << p.err();
  EXPECT_EQ(p.exit_status(), 0) << p.err();
}

// ---- the lines of two ranks -----------------------------------------------------------------

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// At np 2 with run.log_all_ranks and log_level debug, a GloVe run that writes a checkpoint
// every step logs from both ranks at once (checkpoint lines, epochs, rank 0's resolved
// config of 5 KiB); mpirun forwards both into one pipe. Every line there starts with its
// rank's prefix and subsystem, and no line holds another's prefix: lines are whole (Note
// [Whole lines from every rank] in core/log.cpp). Used to: the resolved config's lines had
// no prefix, and a line of rank 1 landed inside one of them ("beta2 =[r1/2][comm] MPI ...").
TEST(LogLines, TwoRanksNeverShareALine) {
  TempDir dir;
  std::vector<std::string> cmd = loom_cmd(2, {"train", kGlove, "--set", "run.dir=" + dir.file("run"), "--set",
                                              "run.log_all_ranks=true", "--set", "run.log_level=debug", "--set",
                                              "glove.epochs=3", "--set", "eval.every_epochs=1", "--set",
                                              "checkpoint.every_steps=1", "--set", "checkpoint.keep_last=2", "--set",
                                              "progress.interval_s=0.001"});
  std::string line = "";
  for (const std::string& a : cmd) line += shell_quote(a) + " ";
  const RunResult r = run({"/bin/sh", "-c", line + "2>&1 >/dev/null | cat"}, 300s);
  ASSERT_FALSE(r.timed_out);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  const std::regex whole("^\\[r[01]/2\\]\\[[A-Za-z0-9_.-]+\\] .*");
  const std::regex inner("\\[r[01]/2\\]\\[");
  std::istringstream in(r.out);
  int lines[2] = {0, 0}, config_lines = 0, checkpoint_lines_r1 = 0;
  for (std::string l; std::getline(in, l);) {
    ASSERT_TRUE(std::regex_match(l, whole)) << "a line without its rank's prefix: '" << l << "'";
    ASSERT_FALSE(std::regex_search(l.substr(1), inner)) << "two ranks in one line: '" << l << "'";
    ++lines[l[2] - '0'];
    if (l.rfind("[r0/2][config] ", 0) == 0) ++config_lines;
    if (std::regex_match(l, std::regex("^\\[r1/2\\]\\[ckpt\\] saved \\S+step_\\d+\\.h5 \\(step \\d+, .*\\)$")))
      ++checkpoint_lines_r1;
  }
  std::printf("lines: rank 0 %d (the resolved config %d), rank 1 %d (checkpoints saved %d)\n", lines[0], config_lines,
              lines[1], checkpoint_lines_r1);
  EXPECT_GT(config_lines, 100) << "the resolved config is printed on rank 0, line by line";
  EXPECT_GE(checkpoint_lines_r1, 10) << r.out;
  EXPECT_GE(lines[1], 20);
}

}  // namespace
}  // namespace loom::test
