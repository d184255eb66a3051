// run.device and train.precision (Note [Training on a GPU] in launch/run/train_device.h).
#include "launch/run/train_device.h"

#include <cstdlib>
#include <string>

#include "core/error.h"
#include "core/log.h"
#include "core/version.h"
#include "dist/gpu_select.h"
#include "dist/mpi_communicator.h"
#include "launch/config/config.h"

namespace loom {

CudaMatmul matmul_precision_of(std::string_view precision) {
  if (precision == "fp32") return CudaMatmul::kFp32;
  if (precision == "tf32") return CudaMatmul::kTf32;
  if (precision == "bf16") return CudaMatmul::kBf16;
  throw ConfigError("train.precision = \"" + std::string(precision) +
                    "\": expected one of fp32, tf32, bf16");
}

void require_cpu_training(const Config& config, std::string_view kind) {
  LOOM_CHECK(config.run.device == "cpu", ConfigError,
             "run.device = \"" + config.run.device + "\": train.model = " + std::string(kind) +
                 " trains on the CPU only (gpt and bert train on GPUs); set run.device = \"cpu\"");
  LOOM_CHECK(config.train.precision == "fp32", ConfigError,
             "train.precision = \"" + config.train.precision + "\": " + std::string(kind) +
                 " trains on the CPU, in fp32 only; set train.precision = \"fp32\"");
}

Device train_device(const Config& config, MpiCommunicator& world, std::string_view kind) {
  const CudaMatmul precision = matmul_precision_of(config.train.precision);
  if (config.run.device == "cpu") {
    LOOM_CHECK(precision == CudaMatmul::kFp32, ConfigError,
               "train.precision = \"" + config.train.precision +
                   "\" needs run.device = \"cuda\": the CPU trains in fp32 only (set "
                   "train.precision = \"fp32\", or run.device = \"cuda\" on a GPU node)");
    return Device::cpu();
  }
  LOOM_CHECK(config.run.device == "cuda", ConfigError,
             "run.device = \"" + config.run.device + "\": expected cpu or cuda");
  LOOM_CHECK(kWithCuda, ConfigError,
             "run.device = \"cuda\": this loom was built without CUDA (no nvcc, cuBLAS or NCCL "
             "at configure time, or -DLOOM_CUDA=OFF); rebuild with CUDA, or set run.device = \"cpu\"");
  if (cuda_device_count() == 0) {
    const char* visible = std::getenv("CUDA_VISIBLE_DEVICES");
    throw ConfigError("run.device = \"cuda\": rank " + std::to_string(world.rank()) + " on " +
                      world.host_name() + " sees no GPU (CUDA_VISIBLE_DEVICES=" +
                      (visible != nullptr ? visible : "(unset)") + ", CUDA driver " +
                      cuda_driver_version() + "); run on a GPU node (srun --gpus-per-node), or set "
                      "run.device = \"cpu\"");
  }
  const Device device = gpu_for_this_rank(world);   // collective
  set_cuda_matmul(precision);
  log::info(std::string(kind), "training on " + device.str() + " (" + cuda_device_name(device.index) +
                                   "), matmuls in " + config.train.precision);
  return device;
}

}  // namespace loom
