#include "launch/run_env.h"

#include <cstdlib>
#include <string>
#include <thread>

#include "core/device.h"
#include "dist/mpi_communicator.h"

namespace loom {
namespace {

const char* env(const char* name) {
  const char* v = std::getenv(name);
  return (v != nullptr && *v != '\0') ? v : nullptr;
}

int env_int(const char* name, int fallback) {
  const char* v = env(name);
  if (v == nullptr) return fallback;
  char* end = nullptr;
  long x = std::strtol(v, &end, 10);
  return (end != v && *end == '\0') ? static_cast<int>(x) : fallback;
}

}  // namespace

const char* launcher_name(Launcher launcher) {
  switch (launcher) {
    case Launcher::kSingleton: return "singleton";
    case Launcher::kMpirun: return "mpirun";
    case Launcher::kSlurm: return "slurm";
  }
  return "?";
}

RunEnv RunEnv::detect() {
  RunEnv e;
  if (env("OMPI_COMM_WORLD_SIZE") != nullptr) {
    // mpirun (also inside an sbatch allocation: mpirun reads SLURM's allocation but the
    // ranks are Open MPI's).
    e.launcher = Launcher::kMpirun;
    e.announced_size = env_int("OMPI_COMM_WORLD_SIZE", 1);
    e.announced_rank = env_int("OMPI_COMM_WORLD_RANK", 0);
    e.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", 0);
    e.local_size = env_int("OMPI_COMM_WORLD_LOCAL_SIZE", 1);
    e.node_rank = env_int("OMPI_COMM_WORLD_NODE_RANK", 0);
  } else if (env("SLURM_STEP_ID") != nullptr && env("SLURM_PROCID") != nullptr) {
    // A task of an srun step.
    e.launcher = Launcher::kSlurm;
    e.announced_size = env_int("SLURM_STEP_NUM_TASKS", env_int("SLURM_NTASKS", 1));
    e.announced_rank = env_int("SLURM_PROCID", 0);
    e.local_rank = env_int("SLURM_LOCALID", 0);
    e.local_size = env_int("SLURM_STEP_TASKS_PER_NODE", 1);
    e.node_rank = env_int("SLURM_NODEID", 0);
  }
  if (const char* j = env("SLURM_JOB_ID")) e.job_id = j;
  e.restart_count = env_int("SLURM_RESTART_COUNT", 0);
  e.threads = env_int("OMP_NUM_THREADS", static_cast<int>(std::thread::hardware_concurrency()));
  const char* vis = env("CUDA_VISIBLE_DEVICES");
  e.visible_gpus = vis ? vis : "(unset)";
  int ngpu = cuda_device_count();
  e.gpu = ngpu > 0 ? e.local_rank % ngpu : -1;
  return e;
}

}  // namespace loom
