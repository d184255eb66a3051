// RunMonitor under mpirun (-np 1, 2, 3): agreed stop decisions, metrics.jsonl, straggler
// naming, and liveness of the step loop while hostile and busy status clients connect.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <csignal>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "core/tensor.h"
#include "dist/mpi_communicator.h"
#include "launch/monitor/metrics.h"
#include "launch/monitor/run_monitor.h"
#include "launch/run/signals.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

// A minimal blocking client: connect to 127.0.0.1:port, optionally send, read to EOF.
int connect_local(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  timeval tv{};
  tv.tv_sec = 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Returns the body of a 200 answer, or "" for anything else.
std::string get_body(int port, const std::string& path) {
  const int fd = connect_local(port);
  if (fd < 0) return "";
  const std::string req = "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
  std::string raw;
  if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(req.size())) {
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof(buf), 0)) > 0;) raw.append(buf, static_cast<size_t>(n));
  }
  ::close(fd);
  const size_t end = raw.find("\r\n\r\n");
  if (raw.rfind("HTTP/1.1 200 ", 0) != 0 || end == std::string::npos) return "";
  return raw.substr(end + 4);
}

MonitorOptions quiet_options(const std::string& run_dir) {
  MonitorOptions o;
  o.run_dir = run_dir;
  o.bar = MonitorOptions::Bar::kOff;
  o.progress_interval_s = 3600;   // one line at the first step, one at finish
  o.unit = "tok";
  return o;
}

// Every rank must end with the same value (checked with an allreduce of min and max).
void expect_same_on_every_rank(Communicator& comm, int64_t value, const char* what) {
  int64_t lo = value, hi = value;
  comm.allreduce(Tensor::of(&lo, 1), ReduceOp::kMin);
  comm.allreduce(Tensor::of(&hi, 1), ReduceOp::kMax);
  EXPECT_EQ(lo, hi) << what << " differs between ranks (rank " << comm.rank() << " has " << value << ")";
}

TEST(RunMonitor, EveryRankStopsAtTheSameStepWhenOneRankIsSignalled) {
  Communicator& comm = MpiCommunicator::world();
  install_stop_handlers();
  clear_stop_request();
  test::TempDir dir;
  constexpr int64_t kSignalStep = 7;
  const int signalled_rank = comm.size() - 1;
  int64_t stopped_at = -1;
  int stop = 0;
  {
    RunMonitor monitor(comm, quiet_options(dir.path()));
    for (int64_t step = 0; step < 50; ++step) {
      if (step == kSignalStep && comm.rank() == signalled_rank) std::raise(SIGTERM);
      stop = monitor.end_step(StepReport{step, 1.0, 0.001, 10});
      if (stop != 0) {
        stopped_at = step;
        break;
      }
    }
    monitor.finish();
  }
  EXPECT_EQ(stop, SIGTERM) << "rank " << comm.rank();
  EXPECT_EQ(stopped_at, kSignalStep) << "rank " << comm.rank();
  expect_same_on_every_rank(comm, stopped_at, "stop step");
  clear_stop_request();
}

std::vector<nlohmann::json> read_metrics(const std::string& run_dir) {
  std::ifstream in(run_dir + "/" + MetricsWriter::kFileName);
  std::vector<nlohmann::json> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(nlohmann::json::parse(line));
  return lines;
}

void run_steps(Communicator& comm, const std::string& run_dir, int64_t first, int64_t count,
               int64_t metrics_every = 1, int64_t total = 0) {
  MonitorOptions o = quiet_options(run_dir);
  o.metrics_every = metrics_every;
  o.total_steps = total;
  RunMonitor monitor(comm, o);
  const int r = comm.rank();
  for (int64_t step = first; step < first + count; ++step) {
    // loss r+1 (mean (size+1)/2, exact); step_seconds (r+1)/64 (exact); items 10(r+1);
    // epoch (step + 1) / 3 (three steps an epoch); lr 1/(step + 1) on rank 0, 99 elsewhere
    // (rank 0's is the one shown).
    const double lr = r == 0 ? 1.0 / double(step + 1) : 99.0;
    EXPECT_EQ(monitor.end_step(StepReport{step, r + 1.0, (r + 1) / 64.0, 10 * (r + 1), -1, (step + 1) / 3, lr}), 0);
  }
  monitor.finish();
}

TEST(RunMonitor, MetricsHaveOneLinePerStepAndAResumedRunAppends) {
  Communicator& comm = MpiCommunicator::world();
  clear_stop_request();
  test::TempDir dir;
  const std::string run_dir = dir.file("run");   // created by the monitor
  run_steps(comm, run_dir, 0, 6);
  run_steps(comm, run_dir, 6, 3);   // "resumed"
  if (comm.rank() != 0) return;     // rank 0 writes; other ranks' run_dir stays empty
  const std::vector<nlohmann::json> lines = read_metrics(run_dir);
  ASSERT_EQ(lines.size(), 9u);
  const int n = comm.size();
  for (size_t i = 0; i < lines.size(); ++i) {
    const nlohmann::json& j = lines[i];
    // Steps done, from 1, as the checkpoints count (Note [Step numbers]).
    EXPECT_EQ(j["step"], static_cast<int64_t>(i) + 1) << "line " << i;
    EXPECT_EQ(j["epoch"], static_cast<int64_t>(i + 1) / 3) << "line " << i;
    EXPECT_EQ(j["lr"].get<double>(), 1.0 / double(i + 1)) << "line " << i;
    EXPECT_EQ(j["loss"].get<double>(), (n + 1) / 2.0) << "line " << i;
    EXPECT_EQ(j["step_seconds_min"].get<double>(), 1 / 64.0) << "line " << i;
    EXPECT_EQ(j["step_seconds_max"].get<double>(), n / 64.0) << "line " << i;
    EXPECT_EQ(j["step_seconds_mean"].get<double>(), (n + 1) / 128.0) << "line " << i;
    EXPECT_EQ(j["slowest_rank"], n - 1) << "line " << i;
    EXPECT_GT(j["items_per_s"].get<double>(), 0.0) << "line " << i;
    EXPECT_GE(j["time"].get<double>(), 0.0) << "line " << i;
  }
}

// progress.metrics_every = 4 over 10 steps: the steps done 4, 8 and the last one, 10.
TEST(RunMonitor, MetricsEveryNWritesMultiplesOfNAndTheLastStep) {
  Communicator& comm = MpiCommunicator::world();
  clear_stop_request();
  test::TempDir dir;
  run_steps(comm, dir.file("run"), 0, 10, 4, 10);
  if (comm.rank() != 0) return;
  const std::vector<nlohmann::json> lines = read_metrics(dir.file("run"));
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0]["step"], 4);
  EXPECT_EQ(lines[1]["step"], 8);
  EXPECT_EQ(lines[2]["step"], 10);
}

TEST(RunMonitor, ASlowRankIsNamedAsStraggler) {
  Communicator& comm = MpiCommunicator::world();
  if (comm.size() < 2) GTEST_SKIP() << "a straggler needs at least two ranks";
  clear_stop_request();
  test::TempDir dir;
  MonitorOptions o = quiet_options(dir.path());
  o.status_port = 0;
  RunMonitor monitor(comm, o);
  const int slow_rank = comm.size() - 1;
  for (int64_t step = 0; step < 12; ++step) {
    const auto t0 = Clock::now();
    if (comm.rank() == slow_rank) std::this_thread::sleep_for(30ms);
    const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    monitor.end_step(StepReport{step, 0.5, seconds, 1});
  }
  if (comm.rank() == 0) {
    EXPECT_EQ(monitor.straggler_rank(), slow_rank);
    const std::string body = get_body(monitor.status_port(), "/status");
    ASSERT_FALSE(body.empty()) << "no /status answer on port " << monitor.status_port();
    const auto j = nlohmann::json::parse(body);
    EXPECT_EQ(j["straggler_rank"], slow_rank) << body;
    ASSERT_EQ(j["ranks"].size(), static_cast<size_t>(comm.size())) << body;
    EXPECT_GE(j["ranks"][slow_rank]["mean_step_seconds"].get<double>(), 0.025) << body;
    EXPECT_EQ(j["step"], 12) << body;   // 12 steps done
    EXPECT_EQ(j["stage"], "train") << body;
    EXPECT_EQ(j["world_size"], comm.size()) << body;
  }
  monitor.finish();
}

// Collectives keep going while rank 0's status server has a client that never sends and
// 100 clients hammering /status. Liveness only: a generous bound, no speed asserts.
TEST(RunMonitor, StepLoopStaysLiveUnderHostileAndBusyClients) {
  Communicator& comm = MpiCommunicator::world();
  clear_stop_request();
  test::TempDir dir;
  MonitorOptions o = quiet_options(dir.path());
  o.status_port = 0;
  o.total_steps = 200;
  RunMonitor monitor(comm, o);

  std::atomic<bool> done{false};
  std::atomic<int> answered{0};
  std::vector<std::thread> clients;
  int silent_fd = -1;
  if (comm.rank() == 0) {
    const int port = monitor.status_port();
    silent_fd = connect_local(port);   // connects and never sends
    EXPECT_GE(silent_fd, 0);
    for (int c = 0; c < 100; ++c) {
      clients.emplace_back([&, port] {
        for (int i = 0; i < 20 && (i == 0 || !done.load()); ++i)
          if (!get_body(port, "/status").empty()) ++answered;
      });
    }
  }
  // At least total_steps steps, and on until rank 0 has seen 100 answers (or kCap, a safety
  // net that must not be what ends the loop): the ranks agree on going on with one more
  // collective per step. A stall shows as one long step, measured on every rank.
  constexpr auto kCap = 240s;
  const auto t0 = Clock::now();
  int64_t steps_done = 0;
  auto longest_step = Clock::duration::zero();
  for (int64_t step = 0;; ++step) {
    const auto step_start = Clock::now();
    int64_t x = comm.rank() + 1;
    comm.allreduce(Tensor::of(&x, 1));
    // EXPECT, not ASSERT: a rank leaving the loop early would leave the others blocked.
    EXPECT_EQ(x, int64_t{comm.size()} * (comm.size() + 1) / 2) << "step " << step;
    EXPECT_EQ(monitor.end_step(StepReport{step, 1.0, 0.0, 1}), 0) << "step " << step;
    ++steps_done;
    longest_step = std::max(longest_step, Clock::now() - step_start);
    int64_t more = 0;
    if (comm.rank() == 0)
      more = (steps_done < o.total_steps || answered.load() < 100) && Clock::now() - t0 < kCap;
    comm.allreduce(Tensor::of(&more, 1), ReduceOp::kMax);
    if (more == 0) break;
  }
  const auto elapsed = Clock::now() - t0;
  done = true;
  for (auto& t : clients) t.join();
  if (silent_fd >= 0) ::close(silent_fd);
  monitor.finish();
  EXPECT_GE(steps_done, o.total_steps);
  EXPECT_LT(elapsed, kCap) << "the loop ran into its cap: the step loop or the status clients were stalled";
  // One step is two allreduces of 8 bytes and end_step: 10 s is generous on a loaded
  // 2-core machine and far below what a server holding the step loop would cause.
  EXPECT_LT(longest_step, 10s) << "the step loop was stalled for "
                               << std::chrono::duration<double>(longest_step).count() << " s";
  if (comm.rank() == 0) {
    EXPECT_GE(answered.load(), 100) << "status clients were not answered";
  }
}

}  // namespace
}  // namespace loom
