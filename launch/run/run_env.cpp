#include "launch/run/run_env.h"

#include <sched.h>
#include <unistd.h>

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

std::string env_str(const char* name) {
  const char* v = env(name);
  return v ? v : "";
}

std::string this_host() {
  char name[256] = {};
  if (gethostname(name, sizeof name - 1) != 0) return "?";
  return name;
}

// The CPUs this process may run on, as text and as a count.
void read_affinity(RunEnv& e) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) {
    e.affinity = "?";
    e.affinity_count = 0;
    return;
  }
  bool cpus[CPU_SETSIZE];
  for (int c = 0; c < CPU_SETSIZE; ++c) cpus[c] = CPU_ISSET(c, &set);
  e.affinity = cpu_list_text(cpus, CPU_SETSIZE);
  e.affinity_count = CPU_COUNT(&set);
}

void read_mpirun(RunEnv& e) {
  // mpirun (also inside an sbatch allocation: mpirun reads SLURM's allocation but the
  // ranks are Open MPI's). OMPI_COMM_WORLD_NODE_RANK is a rank *within* the node, not the
  // node's index, and Open MPI exports no node index: node_rank stays -1 here.
  e.launcher = Launcher::kMpirun;
  e.announced_size = env_int("OMPI_COMM_WORLD_SIZE", 1);
  e.announced_rank = env_int("OMPI_COMM_WORLD_RANK", 0);
  e.local_rank = env_int("OMPI_COMM_WORLD_LOCAL_RANK", 0);
  e.local_size = env_int("OMPI_COMM_WORLD_LOCAL_SIZE", 1);
  e.node_rank = -1;
  e.nodes = env_int("OMPI_MCA_orte_num_nodes", 1);
  e.cpu_bind = env_str("OMPI_MCA_hwloc_base_binding_policy");
}

void read_srun(RunEnv& e) {
  e.launcher = Launcher::kSlurm;
  e.announced_size = env_int("SLURM_STEP_NUM_TASKS", env_int("SLURM_NTASKS", 1));
  e.announced_rank = env_int("SLURM_PROCID", 0);
  e.local_rank = env_int("SLURM_LOCALID", 0);
  e.node_rank = env_int("SLURM_NODEID", 0);
  e.nodes = env_int("SLURM_STEP_NUM_NODES", env_int("SLURM_JOB_NUM_NODES", 1));
  std::string per_node = env_str("SLURM_STEP_TASKS_PER_NODE");
  if (per_node.empty()) per_node = env_str("SLURM_TASKS_PER_NODE");
  e.local_size = slurm_tasks_on_node(per_node, e.node_rank, 1);
  e.cpu_bind = env_str("SLURM_CPU_BIND_TYPE");
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

std::string cpu_list_text(const bool* cpus, int count) {
  std::string out;
  for (int c = 0; c < count;) {
    if (!cpus[c]) {
      ++c;
      continue;
    }
    int end = c;
    while (end + 1 < count && cpus[end + 1]) ++end;
    if (!out.empty()) out += ',';
    out += std::to_string(c);
    if (end > c) out += '-' + std::to_string(end);
    c = end + 1;
  }
  return out.empty() ? "-" : out;
}

int slurm_tasks_on_node(const std::string& spec, int node, int fallback) {
  // Comma-separated groups "N" or "N(xR)": R consecutive nodes with N tasks each.
  if (node < 0) return fallback;
  size_t pos = 0;
  int first = 0;   // index of the first node of the current group
  while (pos < spec.size()) {
    char* end = nullptr;
    long tasks = std::strtol(spec.c_str() + pos, &end, 10);
    if (end == spec.c_str() + pos || tasks < 0) return fallback;
    pos = static_cast<size_t>(end - spec.c_str());
    long repeat = 1;
    if (spec.compare(pos, 2, "(x") == 0) {
      repeat = std::strtol(spec.c_str() + pos + 2, &end, 10);
      if (end == spec.c_str() + pos + 2 || *end != ')' || repeat < 1) return fallback;
      pos = static_cast<size_t>(end - spec.c_str()) + 1;
    }
    if (node < first + repeat) return static_cast<int>(tasks);
    first += static_cast<int>(repeat);
    if (pos < spec.size()) {
      if (spec[pos] != ',') return fallback;
      ++pos;
    }
  }
  return fallback;
}

RunEnv RunEnv::detect() {
  RunEnv e;
  if (env("OMPI_COMM_WORLD_SIZE") != nullptr) {
    read_mpirun(e);
  } else if (env("SLURM_STEP_ID") != nullptr && env("SLURM_PROCID") != nullptr) {
    read_srun(e);   // a task of an srun step
  }
  e.node_name = env("SLURMD_NODENAME") ? env_str("SLURMD_NODENAME") : this_host();
  if (const char* j = env("SLURM_JOB_ID")) e.job_id = j;
  if (e.launcher == Launcher::kSingleton && torchrun_world_size() > 1) {
    // Refused in launch_problem; only the first process says why (end_with_error).
    e.announced_size = torchrun_world_size();
    e.announced_rank = env_int("RANK", 0);
  }
  e.restart_count = env_int("SLURM_RESTART_COUNT", 0);
  e.cpus_per_task = env_int("SLURM_CPUS_PER_TASK", 0);
  e.gpus_per_task = env_str("SLURM_GPUS_PER_TASK");
  read_affinity(e);
  // Threads: OMP_NUM_THREADS, else the CPUs SLURM gave each task, else the cores this
  // process may run on (see Note [Binding]).
  int cores = e.affinity_count > 0 ? e.affinity_count : static_cast<int>(std::thread::hardware_concurrency());
  e.threads = env_int("OMP_NUM_THREADS", e.cpus_per_task > 0 ? e.cpus_per_task : cores);
  const char* vis = env("CUDA_VISIBLE_DEVICES");
  e.visible_gpus = vis ? vis : "(unset)";
  int ngpu = cuda_device_count();
  e.gpu = ngpu > 0 ? e.local_rank % ngpu : -1;
  return e;
}

std::string RunEnv::launch_problem() const {
  if (std::string torchrun = torchrun_problem(); !torchrun.empty()) return torchrun;
  if (launcher != Launcher::kSlurm || announced_size <= 1) return {};
  if (env("PMIX_RANK") != nullptr || env("PMIX_NAMESPACE") != nullptr) return {};
  // Debian's Open MPI talks to SLURM through PMIx only; MPI_Init would abort every task.
  if (MpiCommunicator::library_version().rfind("Open MPI", 0) != 0) return {};
  std::string n = std::to_string(announced_size);
  std::string how = env("PMI_FD") != nullptr || env("PMI_RANK") != nullptr ? "PMI-2 (--mpi=pmi2)"
                                                                           : "no PMI (--mpi=none)";
  return "srun started " + n + " tasks with " + how + ", which this Open MPI cannot use: MPI " +
         "would start " + n + " singletons or abort. Launch with `srun --mpi=pmix` (or set " +
         "MpiDefault=pmix in slurm.conf; `srun --mpi=list` shows what SLURM offers), or run " +
         "`mpirun` inside the allocation";
}

}  // namespace loom
