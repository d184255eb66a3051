// Rank -> GPU (Note [One GPU per rank] in dist/gpu_select.h).
#include "dist/gpu_select.h"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "dist/mpi_check.h"
#include "dist/mpi_communicator.h"
#include "dist/mpi_handle.h"

namespace loom {
namespace {

// The launcher's local rank, or -1 when it gives none.
int launcher_local_rank(const char** source) {
  for (const char* name : {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID"}) {
    const char* v = std::getenv(name);
    if (v == nullptr || *v == '\0') continue;
    char* end = nullptr;
    const long x = std::strtol(v, &end, 10);
    if (end != v && *end == '\0' && x >= 0) {
      *source = name;
      return static_cast<int>(x);
    }
  }
  return -1;
}

// The ranks sharing this node's memory, ordered by world rank. Freed by the caller.
MPI_Comm node_comm(MpiCommunicator& world) {
  MPI_Comm node = MPI_COMM_NULL;
  LOOM_MPI_CHECK(MPI_Comm_split_type(mpi_comm_of(world.mpi_comm()), MPI_COMM_TYPE_SHARED, world.rank(),
                                     MPI_INFO_NULL, &node));
  return node;
}

// One rank's record in the node's table: world rank, device, UUID and name.
struct Choice {
  int world_rank = 0;
  int device = -1;
  std::array<char, 48> uuid{};
  std::array<char, 80> name{};
};

}  // namespace

LocalRank local_rank_of(MpiCommunicator& world) {
  MPI_Comm node = node_comm(world);
  LocalRank local;
  LOOM_MPI_CHECK(MPI_Comm_rank(node, &local.rank));
  LOOM_MPI_CHECK(MPI_Comm_size(node, &local.size));
  MPI_Comm_free(&node);
  local.source = "MPI shared-memory split";
  const int from_launcher = launcher_local_rank(&local.source);
  if (from_launcher >= 0) local.rank = from_launcher;
  return local;
}

Device gpu_for_this_rank(MpiCommunicator& world) {
  const LocalRank local = local_rank_of(world);
  const int gpus = cuda_device_count();
  Choice mine;
  mine.world_rank = world.rank();
  if (gpus > 0) {
    mine.device = local.rank % gpus;
    const CudaDeviceInfo info = cuda_device_info(mine.device);
    std::snprintf(mine.uuid.data(), mine.uuid.size(), "%s", info.uuid.c_str());
    std::snprintf(mine.name.data(), mine.name.size(), "%s", info.name.c_str());
  }
  // Every rank of the node sees the whole table, so every one reaches the same verdict.
  MPI_Comm node = node_comm(world);
  int node_size = 1;
  LOOM_MPI_CHECK(MPI_Comm_size(node, &node_size));
  std::vector<Choice> all(static_cast<size_t>(node_size));
  LOOM_MPI_CHECK(MPI_Allgather(&mine, sizeof(Choice), MPI_BYTE, all.data(), sizeof(Choice), MPI_BYTE, node));
  MPI_Comm_free(&node);
  const std::string where = "rank " + std::to_string(world.rank()) + " (local rank " +
                            std::to_string(local.rank) + " of " + std::to_string(local.size) +
                            " from " + local.source + ", host " + world.host_name() + ")";
  if (gpus == 0)
    throw Error(where + " sees no GPU (" + std::to_string(cuda_device_count()) +
                " CUDA devices; CUDA_VISIBLE_DEVICES=" +
                (std::getenv("CUDA_VISIBLE_DEVICES") ? std::getenv("CUDA_VISIBLE_DEVICES") : "(unset)") +
                "): run GPU models on a node with GPUs, or keep the model on the CPU");
  for (size_t a = 0; a < all.size(); ++a)
    for (size_t b = a + 1; b < all.size(); ++b) {
      if (all[a].device < 0 || std::string(all[a].uuid.data()) != std::string(all[b].uuid.data())) continue;
      throw CommError(where + ": ranks " + std::to_string(all[a].world_rank) + " and " +
                      std::to_string(all[b].world_rank) + " on this node would drive the same GPU (" +
                      all[a].name.data() + ", " + all[a].uuid.data() + "): " + std::to_string(local.size) +
                      " ranks on this node but " + std::to_string(gpus) +
                      " GPU(s) visible to each. Start at most as many ranks per node as it has GPUs "
                      "(mpirun -npernode N, srun --ntasks-per-node=N), or give each rank its own "
                      "GPU (srun --gpus-per-task=1)");
    }
  log::debug("comm", where + " drives cuda:" + std::to_string(mine.device) + " (" + mine.name.data() + ", " +
                         mine.uuid.data() + ")");
  return Device::cuda(mine.device);
}

}  // namespace loom
