#pragma once
// The noise distribution of negative sampling: P(w) proportional to count(w)^power
// (word2vec: power 0.75), as a sampling table. word2vec fills an array of 1e8 word ids in
// proportion to P (400 MB, and words below 1e-8 of the mass are never drawn); loom uses
// Walker's alias table instead (Vose's construction): V slots of (threshold, alias), 8 bytes
// per word, exact up to 2^-32 per slot, one 64-bit random number per draw:
//   slot  = high 32 bits * V >> 32          (uniform over the V slots)
//   draw  = low 32 bits < threshold[slot] ? slot : alias[slot]
// Read-only after construction, so Hogwild threads share one table.
#include <cstdint>
#include <vector>

namespace loom {

class NoiseTable {
 public:
  NoiseTable() = default;
  // counts (V,), every count >= 0 and at least one > 0.
  NoiseTable(const std::vector<int64_t>& counts, double power);

  int32_t size() const { return static_cast<int32_t>(alias_.size()); }
  int32_t sample(uint64_t random) const {
    const uint32_t slot = static_cast<uint32_t>(((random >> 32) * size_) >> 32);
    return static_cast<uint32_t>(random) < threshold_[slot] ? static_cast<int32_t>(slot) : alias_[slot];
  }
  // The exact probability of drawing w that the table implies (for tests).
  std::vector<double> implied_probabilities() const;

 private:
  std::vector<uint32_t> threshold_;   // (V,) keep the slot when low bits < threshold (2^32 = always)
  std::vector<int32_t> alias_;        // (V,)
  uint64_t size_ = 0;
};

}  // namespace loom
