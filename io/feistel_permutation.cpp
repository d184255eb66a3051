#include "io/feistel_permutation.h"

#include "core/error.h"
#include "core/rng.h"

namespace loom {
namespace {

constexpr int kFeistelRounds = 6;

}  // namespace

FeistelPermutation::FeistelPermutation(int64_t n, uint64_t key) : n_(n), key_(key) {
  LOOM_ASSERT(n >= 1, "FeistelPermutation over an empty set");
  while (half_bits_ < 32 && (uint64_t{1} << (2 * half_bits_)) < static_cast<uint64_t>(n)) ++half_bits_;
}

// Note [Permutation without a table] (io/token_windows.h): 6 Feistel rounds over 2h bits,
// cycle-walked until the value falls below n (2^2h < 4n, so at most 4 walks expected).
int64_t FeistelPermutation::operator()(int64_t epoch, int64_t i) const {
  LOOM_ASSERT(i >= 0 && i < n_, "permutation position outside [0, n)");
  if (n_ == 1) return 0;
  const int h = half_bits_;
  const uint64_t mask = (uint64_t{1} << h) - 1;
  uint64_t x = static_cast<uint64_t>(i);
  do {
    uint64_t left = x >> h, right = x & mask;
    for (uint64_t round = 0; round < kFeistelRounds; ++round) {
      const PhiloxBlock b = philox(key_, static_cast<uint64_t>(epoch), (round << 32) | right);
      const uint64_t f = ((uint64_t{b[0]} << 32) | b[1]) & mask;
      const uint64_t next = left ^ f;
      left = right;
      right = next;
    }
    x = (left << h) | right;
  } while (x >= static_cast<uint64_t>(n_));
  return static_cast<int64_t>(x);
}

}  // namespace loom
