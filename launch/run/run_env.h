#pragma once
// RunEnv: how this process was started (singleton, mpirun, SLURM srun / sbatch), its
// global and local rank, node, tasks per node, job id and restart count, read from Open
// MPI's and SLURM's variables; the cores it may run on; and which GPU this rank uses
// (local rank modulo visible GPUs).
//
// Note [Binding]
// loom binds nothing itself: the launcher does (`mpirun --bind-to core|socket|none`,
// `srun --cpu-bind=cores`, `--gpu-bind`/`--gpus-per-task` for GPUs). loom reads the result
// (sched_getaffinity) and reports it in `loom env`; the OpenMP thread count defaults to the
// cores this rank may use, so a bound rank never runs more threads than its cores. The GPU
// is local rank modulo the devices this rank sees: with one GPU per task (CUDA_VISIBLE_
// DEVICES narrowed by SLURM) that is device 0.
#include <string>

namespace loom {

enum class Launcher { kSingleton, kMpirun, kSlurm };
const char* launcher_name(Launcher launcher);

struct RunEnv {
  Launcher launcher = Launcher::kSingleton;
  int announced_size = 1;       // ranks the launcher says it started (1 for a singleton)
  int announced_rank = 0;
  int local_rank = 0;           // rank among the processes on this node
  int local_size = 1;           // tasks on this node
  int node_rank = 0;            // index of this node in the job; -1 when the launcher does
                                // not say (mpirun: describe_environment derives it)
  int nodes = 1;                // nodes in the job (step), when the launcher says
  std::string node_name;        // SLURMD_NODENAME, else this host's name
  std::string job_id;           // SLURM_JOB_ID, or empty
  int restart_count = 0;        // SLURM_RESTART_COUNT (requeues)
  int cpus_per_task = 0;        // SLURM_CPUS_PER_TASK, or 0 when not asked
  std::string gpus_per_task;    // SLURM_GPUS_PER_TASK as given ("1", "a100:1"), or empty
  std::string cpu_bind;         // what the launcher was asked to bind (SLURM_CPU_BIND_TYPE,
                                // OMPI_MCA_hwloc_base_binding_policy), or empty
  std::string affinity;         // cores this process may run on (sched_getaffinity), "0-3,8"
  int affinity_count = 0;       // how many
  int threads = 1;              // OpenMP threads this rank will use
  int gpu = -1;                 // the CUDA device this rank uses, or -1 (none visible)
  std::string visible_gpus;     // CUDA_VISIBLE_DEVICES as given, or "(unset)"

  // Reads the environment of this process.
  static RunEnv detect();

  // Empty, or why MPI cannot start in this launch: an srun step of several tasks without
  // PMIx (`srun --mpi=pmi2|none`), which Debian's Open MPI cannot use; or processes that
  // torchrun started (RANK, WORLD_SIZE > 1 without mpirun/srun: Note [torchrun]). Checked
  // before MPI_Init, which would otherwise abort every task with Open MPI's own message
  // (or, under torchrun, start N singletons).
  std::string launch_problem() const;
};

// "0-3,8,10-11" for a set of CPU numbers given as a bitmap (true = in the set).
std::string cpu_list_text(const bool* cpus, int count);

// SLURM_STEP_TASKS_PER_NODE / SLURM_TASKS_PER_NODE ("2(x3),1") for node `node`, or
// `fallback` when the text is malformed or `node` is out of range.
int slurm_tasks_on_node(const std::string& spec, int node, int fallback);

}  // namespace loom
