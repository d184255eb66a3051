#pragma once
// Rank -> GPU. Each rank drives one GPU, chosen from its local rank (its place among the
// ranks on its node), and no two ranks on a node may drive the same physical GPU: NCCL
// refuses that ("duplicate GPU"), and sharing would halve both ranks' speed silently.
//
// Note [One GPU per rank]
// The local rank is the launcher's (Open MPI's OMPI_COMM_WORLD_LOCAL_RANK, SLURM's
// SLURM_LOCALID); without either, the rank's index among the world ranks that share its
// node's memory (MPI_Comm_split_type(MPI_COMM_TYPE_SHARED), ordered by world rank). The
// device is local rank modulo the GPUs this rank sees: with every GPU visible that is the
// local rank; with one GPU per task (srun --gpus-per-task=1, CUDA_VISIBLE_DEVICES narrowed
// per rank) it is device 0 of each rank's own list. Which physical GPU that is, the ranks
// of a node compare by UUID: two ranks on one GPU (more ranks than GPUs on a node) is an
// error on every rank, naming both ranks, the GPU, and how to launch instead. CUDA-aware
// MPI is not needed: the UUIDs travel in host memory.
#include "core/device.h"

namespace loom {

class MpiCommunicator;

struct LocalRank {
  int rank = 0;                // among the ranks on this node
  int size = 1;                // ranks on this node
  const char* source = "";     // "OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID" or "MPI shared-memory split"
};

// Collective over `world`: every rank calls it.
LocalRank local_rank_of(MpiCommunicator& world);

// The GPU this rank drives (Note [One GPU per rank]). Collective over `world`. Throws
// loom::Error when this rank sees no GPU, and CommError on every rank of a node where two
// ranks would share one.
Device gpu_for_this_rank(MpiCommunicator& world);

}  // namespace loom
