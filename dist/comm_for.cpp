// comm_for(device): the one place that picks a backend from where a buffer lives
// (STYLE.md rule 8). Host memory -> the MPI world; CUDA memory -> one NCCL communicator
// over that world, created on first use (a collective: every rank must ask for it in the
// same order). Each choice is logged once.
#include <memory>
#include <mutex>
#include <string>

#include "core/error.h"
#include "core/log.h"
#include "dist/mpi_communicator.h"
#ifdef LOOM_DIST_WITH_NCCL
#include "dist/nccl_communicator.h"
#endif

namespace loom {
namespace {

MpiCommunicator& host_world() {
  static std::once_flag logged;
  MpiCommunicator& world =
      MpiCommunicator::world_initialized() ? MpiCommunicator::world() : MpiCommunicator::init_world();
  std::call_once(logged, [&] {
    log::info("comm", "host buffers use the MPI communicator (" + std::to_string(world.size()) +
                          " ranks, " + MpiCommunicator::library_version() + ")");
  });
  return world;
}

#ifdef LOOM_DIST_WITH_NCCL
Communicator& cuda_world(Device device) {
  static std::mutex mutex;
  static std::unique_ptr<NcclCommunicator> nccl;  // lives until exit, like the MPI world
  std::lock_guard<std::mutex> lock(mutex);
  if (nccl == nullptr) {
    nccl = std::make_unique<NcclCommunicator>(host_world(), device.index);
    log::info("comm", "CUDA buffers use the NCCL communicator on " + device.str() + " (" +
                          NcclCommunicator::library_version() + ")");
  } else if (nccl->device_index() != device.index) {
    throw CommError("comm_for(" + device.str() + "): this rank's NCCL communicator is on cuda:" +
                    std::to_string(nccl->device_index()) +
                    "; a rank drives one GPU (pick it with RunEnv's local rank)");
  }
  return *nccl;
}
#else
[[noreturn]] Communicator& cuda_world(Device device) {
  throw Error("comm_for(" + device.str() + "): this loom was built without CUDA/NCCL "
              "(LOOM_CUDA=OFF or no nvcc/NCCL at configure time), so it cannot run collectives "
              "on GPU memory; rebuild with -DLOOM_CUDA=ON");
}
#endif

}  // namespace

Communicator& comm_for(Device device) {
  if (device.is_cpu()) return host_world();
  return cuda_world(device);
}

}  // namespace loom
