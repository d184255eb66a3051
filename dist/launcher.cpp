// launcher_world_size(): what the launcher that started this process announced, read
// from its environment. No MPI here: init_world compares it with MPI's own answer.
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
  return 0;
}

}  // namespace loom
