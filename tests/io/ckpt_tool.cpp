// Helper for the io tests: `ckpt_tool DIR NAME FLOATS STEP [FSIZE_LIMIT]` saves a checkpoint
// with one parameter "W" of FLOATS float32 values (singleton world, gathered mode) and exits
// 0, or prints the error and exits 1. With FSIZE_LIMIT (bytes) it first limits the size of
// files it may write (RLIMIT_FSIZE, SIGXFSZ ignored): a write past it fails with EFBIG, as a
// full disk fails one with ENOSPC. The limit is set after MPI start-up, whose launcher
// support writes larger files of its own.
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <string>

#include "core/error.h"
#include "core/param_store.h"
#include "dist/mpi_communicator.h"
#include "io/checkpoint.h"

int main(int argc, char** argv) {
  if (argc != 5 && argc != 6) {
    std::fprintf(stderr, "usage: ckpt_tool DIR NAME FLOATS STEP [FSIZE_LIMIT]\n");
    return 2;
  }
  int code = 0;
  loom::MpiCommunicator& world = loom::MpiCommunicator::init_world(&argc, &argv);
  if (argc == 6) {
    std::signal(SIGXFSZ, SIG_IGN);
    rlimit limit{};
    limit.rlim_cur = limit.rlim_max = std::stoull(argv[5]);
    if (setrlimit(RLIMIT_FSIZE, &limit) != 0) std::perror("setrlimit");
  }
  try {
    loom::ParamStore params;
    params.declare("W", {std::stoll(argv[3])});
    params.finalize();
    loom::SaveRequest req;
    req.meta.model_kind = "test";
    req.meta.step = std::stoll(argv[4]);
    req.params = &params;
    loom::save_checkpoint(world, argv[1], argv[2], req, loom::WriteMode::kGathered);
  } catch (const loom::Error& e) {
    std::fprintf(stderr, "ckpt_tool: %s\n", e.what());
    code = 1;
  }
  loom::MpiCommunicator::shutdown_world();
  return code;
}
