#pragma once
// Versions of the communication backends, for `loom env`.
#include <string>

namespace loom {

// "2.27.7", or "none (built without CUDA)".
std::string nccl_version();

}  // namespace loom
