#include "dist/backend_info.h"

namespace loom {

std::string nccl_version() { return "none (built without CUDA)"; }

}  // namespace loom
