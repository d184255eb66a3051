#pragma once
// Helpers for the MPI collective tests: integer-valued data (so sums are exact in every
// dtype), dtype traits, a checker that prints index, rank, expected and actual, and a
// scope that shrinks MpiCommunicator's chunk limit so the split path runs on small data.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "dist/mpi_communicator.h"
#include "dist/mpi_testing.h"

namespace loom::test {

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::kF32; }
template <> constexpr DType dtype_of<double>() { return DType::kF64; }
template <> constexpr DType dtype_of<int32_t>() { return DType::kI32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::kI64; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::kU8; }
template <> constexpr DType dtype_of<uint64_t>() { return DType::kU64; }

template <class T>
Tensor tensor_of(std::vector<T>& v) {
  return Tensor(v.data(), {static_cast<int64_t>(v.size())}, dtype_of<T>());
}

// Small non-negative integers: sums over 3 ranks stay below 128 (u8 is safe).
inline int64_t value_at(int rank, int64_t index) { return (index * 7 + rank * 13) % 41; }

// Compares element by element; reports the first few mismatches with index and rank.
template <class T>
void expect_equal(const std::vector<T>& actual, const std::vector<T>& expected,
                  const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  int rank = MpiCommunicator::world().rank();
  int reported = 0;
  size_t mismatches = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    if (actual[i] == expected[i]) continue;
    ++mismatches;
    if (reported++ < 5)
      ADD_FAILURE() << what << ": index " << i << ", rank " << rank << ": expected "
                    << +expected[i] << ", actual " << +actual[i];
  }
  EXPECT_EQ(mismatches, 0u) << what << " on rank " << rank;
}

// Shrinks the chunk limit for its lifetime (every rank constructs it at the same point).
class ChunkLimit {
 public:
  explicit ChunkLimit(int64_t elements) { detail::set_mpi_max_chunk_elements(elements); }
  ~ChunkLimit() { detail::set_mpi_max_chunk_elements(0); }
  ChunkLimit(const ChunkLimit&) = delete;
  ChunkLimit& operator=(const ChunkLimit&) = delete;
};

}  // namespace loom::test
