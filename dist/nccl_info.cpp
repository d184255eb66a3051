// Built only with CUDA (dist/CMakeLists.txt compiles nccl_*.cpp then).
#include <nccl.h>

#include "dist/backend_info.h"

namespace loom {

std::string nccl_version() {
  int v = 0;
  if (ncclGetVersion(&v) != ncclSuccess) return "unknown";
  // NCCL encodes versions >= 2.9 as major*10000 + minor*100 + patch.
  return std::to_string(v / 10000) + "." + std::to_string((v % 10000) / 100) + "." +
         std::to_string(v % 100);
}

}  // namespace loom
