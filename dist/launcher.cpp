// launcher_world_size(): what the launcher that started this process announced, read
// from its environment. No MPI here: init_world compares it with MPI's own answer.
// torchrun_world_size(): a PyTorch launcher's world, which MPI cannot join.
#include <cstdlib>
#include <string>

#include "dist/mpi_communicator.h"

namespace loom {
namespace {

// A positive integer from the environment, or 0 when unset, empty or malformed.
int env_int(const char* name) {
  const char* text = std::getenv(name);
  if (text == nullptr || *text == '\0') return 0;
  char* end = nullptr;
  long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value <= 0 || value > 1 << 24) return 0;
  return static_cast<int>(value);
}

bool env_set(const char* name) {
  const char* text = std::getenv(name);
  return text != nullptr && *text != '\0';
}

}  // namespace

// Note [torchrun]
// torchrun (and torch.distributed.launch, and PyTorch-minded cluster wrappers) start N
// independent processes and tell each its place with RANK, WORLD_SIZE, LOCAL_RANK and a
// rendezvous (MASTER_ADDR/PORT). loom's ranks meet through MPI, which knows nothing of
// that: each process would come up as a singleton and train the whole job alone, N times
// over, into one run directory. So RANK and WORLD_SIZE > 1 with no MPI or SLURM step
// around them name the launcher in the refusal (RunEnv::launch_problem, launcher_mismatch)
// rather than leave the user with "MPI sees a world of 1". Under mpirun or srun the same
// variables (exported by a user's shell) are ignored: the MPI launcher's own win.
int torchrun_world_size() {
  if (env_set("OMPI_COMM_WORLD_SIZE") || (env_set("SLURM_STEP_ID") && env_set("SLURM_PROCID")) ||
      env_set("PMI_SIZE") || env_set("PMIX_SIZE") || env_set("PMIX_RANK") || env_set("PMI_RANK"))
    return 0;
  if (!env_set("RANK")) return 0;
  const int n = env_int("WORLD_SIZE");
  return n > 1 ? n : 0;
}

int launcher_world_size() {
  if (int n = env_int("OMPI_COMM_WORLD_SIZE"); n > 0) return n;
  // Inside an srun step (not merely inside an sbatch allocation, whose batch script also
  // sees SLURM_* variables but is a single process).
  if (env_set("SLURM_STEP_ID") && env_set("SLURM_PROCID")) {
    if (int n = env_int("SLURM_STEP_NUM_TASKS"); n > 0) return n;
    if (int n = env_int("SLURM_NTASKS"); n > 0) return n;
  }
  if (int n = env_int("PMI_SIZE"); n > 0) return n;
  if (int n = env_int("PMIX_SIZE"); n > 0) return n;
  if (int n = torchrun_world_size(); n > 0) return n;
  return 0;
}

std::string torchrun_problem() {
  const int n = torchrun_world_size();
  if (n == 0) return {};
  const std::string size = std::to_string(n);
  std::string vars = "RANK=" + std::string(std::getenv("RANK")) + " WORLD_SIZE=" + std::getenv("WORLD_SIZE");
  if (env_set("LOCAL_RANK")) vars += std::string(" LOCAL_RANK=") + std::getenv("LOCAL_RANK");
  if (env_set("MASTER_ADDR")) vars += std::string(" MASTER_ADDR=") + std::getenv("MASTER_ADDR");
  return "this process was started by torchrun or a PyTorch launcher (" + vars +
         ", and no mpirun or srun step): loom's ranks meet through MPI, so the " + size +
         " processes would each train alone. Launch with `mpirun -np " + size +
         " loom ...` (or `srun --mpi=pmix -n " + size + " loom ...` under SLURM); for one process "
         "unset RANK and WORLD_SIZE";
}

}  // namespace loom
