// comm_loop: a tiny "training loop" of collectives for the fault tests. Every step runs
// an allreduce (checked exactly) and every 4th step a broadcast. One rank can be told to
// stall (sleep) at a step; ranks write their pid to --pid-dir so a test can stop or kill
// a chosen rank. --freeze-rank R --freeze-at S makes rank R stop itself (SIGSTOP) while it
// waits inside the allreduce of step S, which the other ranks enter a second later: every
// rank has then entered the collective and only the heartbeat can tell who is stopped.
//
//   comm_loop [--steps N] [--numel N] [--sleep-ms MS] [--timeout-ms MS]
//             [--stall-rank R --stall-at S --stall-seconds X]
//             [--freeze-rank R --freeze-at S] [--pid-dir DIR]
//
// Exit status: 0 after all steps; a loom::Error's exit code (1, or 3 from the watchdog).
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "dist/mpi_communicator.h"

namespace {

struct Options {
  int64_t steps = 20;
  int64_t numel = 1024;
  int64_t sleep_ms = 0;
  int64_t timeout_ms = 0;
  int stall_rank = -1;
  int64_t stall_at = 0;
  int64_t stall_seconds = 0;
  int freeze_rank = -1;
  int64_t freeze_at = 0;
  std::string pid_dir;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    if (i + 1 >= argc) throw loom::ConfigError("comm_loop: " + flag + " needs a value");
    std::string value = argv[++i];
    if (flag == "--steps") o.steps = std::stoll(value);
    else if (flag == "--numel") o.numel = std::stoll(value);
    else if (flag == "--sleep-ms") o.sleep_ms = std::stoll(value);
    else if (flag == "--timeout-ms") o.timeout_ms = std::stoll(value);
    else if (flag == "--stall-rank") o.stall_rank = std::stoi(value);
    else if (flag == "--stall-at") o.stall_at = std::stoll(value);
    else if (flag == "--stall-seconds") o.stall_seconds = std::stoll(value);
    else if (flag == "--freeze-rank") o.freeze_rank = std::stoi(value);
    else if (flag == "--freeze-at") o.freeze_at = std::stoll(value);
    else if (flag == "--pid-dir") o.pid_dir = value;
    else throw loom::ConfigError("comm_loop: unknown option " + flag);
  }
  return o;
}

void write_pid(const Options& o, int rank) {
  if (o.pid_dir.empty()) return;
  std::string path = o.pid_dir + "/rank" + std::to_string(rank) + ".pid";
  std::ofstream(path + ".tmp") << getpid() << "\n";
  std::rename((path + ".tmp").c_str(), path.c_str());
}

void run_loop(loom::MpiCommunicator& comm, const Options& o) {
  std::vector<int32_t> grad(static_cast<size_t>(o.numel));  // (numel)
  const int32_t want = comm.size() * (comm.size() + 1) / 2;
  for (int64_t step = 0; step < o.steps; ++step) {
    comm.set_step(step);
    if (comm.rank() == o.stall_rank && step == o.stall_at) {
      loom::log::warn("test", "stalling for " + std::to_string(o.stall_seconds) + " s");
      std::this_thread::sleep_for(std::chrono::seconds(o.stall_seconds));
    }
    if (o.freeze_rank >= 0 && step == o.freeze_at) {
      if (comm.rank() == o.freeze_rank) {
        std::thread([] {
          std::this_thread::sleep_for(std::chrono::milliseconds(300));
          kill(getpid(), SIGSTOP);
        }).detach();
      } else {
        std::this_thread::sleep_for(std::chrono::seconds(1));
      }
    }
    std::fill(grad.begin(), grad.end(), comm.rank() + 1);
    comm.allreduce(loom::Tensor::of(grad.data(), o.numel), loom::ReduceOp::kSum);
    for (size_t i = 0; i < grad.size(); ++i)
      if (grad[i] != want)
        throw loom::CommError("comm_loop: step " + std::to_string(step) + " index " +
                              std::to_string(i) + ": expected " + std::to_string(want) +
                              ", actual " + std::to_string(grad[i]));
    if (step % 4 == 0) {
      int64_t token = comm.rank() == 0 ? step : -1;
      comm.broadcast(loom::Tensor::of(&token, 1), 0);
      if (token != step) throw loom::CommError("comm_loop: broadcast gave " + std::to_string(token));
    }
    // Every rank has been through 10 steps of collectives: the test may signal one now.
    if (step == 10 && comm.rank() == 0 && !o.pid_dir.empty()) std::ofstream(o.pid_dir + "/looping") << step << "\n";
    if (o.sleep_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(o.sleep_ms));
  }
}

}  // namespace

int main(int argc, char** argv) {
  loom::MpiCommunicator* comm = nullptr;
  try {
    Options o = parse(argc, argv);
    comm = &loom::MpiCommunicator::init_world(&argc, &argv);
    if (o.timeout_ms > 0) comm->set_default_timeout(std::chrono::milliseconds(o.timeout_ms));
    write_pid(o, comm->rank());
    run_loop(*comm, o);
    if (comm->rank() == 0) std::printf("comm_loop: %lld steps done\n", static_cast<long long>(o.steps));
    loom::MpiCommunicator::shutdown_world();
    return loom::kExitOk;
  } catch (const loom::Error& e) {
    if (comm != nullptr) comm->abort(e.what(), e.exit_code());
    loom::log::error("test", e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    if (comm != nullptr) comm->abort(e.what(), loom::kExitError);
    loom::log::error("test", e.what());
    return loom::kExitError;
  }
}
