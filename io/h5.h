#pragma once
// HDF5 entry points that do not need hdf5.h in the caller.
#include <string>

namespace loom {

// "1.10.8 (parallel)" for the linked library.
std::string hdf5_version();

}  // namespace loom
