#pragma once
// A bijection on [0, n) per epoch, computed without a table: the permutation of
// Note [Permutation without a table] (io/token_windows.h) as a value that any data order
// can hold. FeistelPermutation(n, rng_key(seed, 0, RngPurpose::kShuffle)) visits exactly
// the slots TokenWindows::slot() visits for a shuffled TokenWindows of n windows
// (tests/io/test_bert_examples.cpp checks it), so the two orders are one algorithm.
// Const and thread-safe; no allocation.
#include <cstdint>

namespace loom {

class FeistelPermutation {
 public:
  FeistelPermutation() = default;
  // n >= 1 elements; key: the Philox key of the round functions (from (seed, purpose)).
  FeistelPermutation(int64_t n, uint64_t key);

  int64_t size() const { return n_; }
  // The element visited at position i (0 <= i < n) of epoch `epoch`.
  int64_t operator()(int64_t epoch, int64_t i) const;

 private:
  int64_t n_ = 1;
  uint64_t key_ = 0;
  int half_bits_ = 1;   // b / 2: the smallest h >= 1 with 4^h >= n
};

}  // namespace loom
