#pragma once
// RunEnv: how this process was started (singleton, mpirun, SLURM srun / sbatch), its
// global and local rank, node, job id and restart count, read from Open MPI's and SLURM's
// variables; and which GPU this rank uses (local rank modulo visible GPUs).
#include <string>

namespace loom {

enum class Launcher { kSingleton, kMpirun, kSlurm };
const char* launcher_name(Launcher launcher);

struct RunEnv {
  Launcher launcher = Launcher::kSingleton;
  int announced_size = 1;       // ranks the launcher says it started (1 for a singleton)
  int announced_rank = 0;
  int local_rank = 0;           // rank among the processes on this node
  int local_size = 1;
  int node_rank = 0;            // index of this node in the job, when the launcher says
  std::string job_id;           // SLURM_JOB_ID, or empty
  int restart_count = 0;        // SLURM_RESTART_COUNT (requeues)
  int threads = 1;              // OpenMP threads this rank will use
  int gpu = -1;                 // the CUDA device this rank uses, or -1 (none visible)
  std::string visible_gpus;     // CUDA_VISIBLE_DEVICES as given, or "(unset)"

  // Reads the environment of this process.
  static RunEnv detect();
};

}  // namespace loom
