#pragma once
// Counter-based RNG: Philox4x32-10 (Salmon et al., SC'11). A stream is keyed by
// (seed, rank, purpose); its whole state is one 64-bit position, so a checkpoint stores
// it exactly and a stream can jump anywhere in O(1). Per-example randomness that must not
// depend on the world size (masking, pairing) uses philox() directly with a key from
// (seed, purpose) and the global example index as counter.
#include <array>
#include <cstdint>

namespace loom {

enum class RngPurpose : uint32_t {
  kInit = 1,       // parameter initialisation
  kShuffle = 2,    // data order
  kData = 3,       // per-example sampling (subsampling, windows)
  kNegative = 4,   // negative sampling
  kMask = 5,       // masked-LM masking
  kDropout = 6,
  kSample = 7,     // generation: sampling the next token
  kTest = 100,
};

using PhiloxBlock = std::array<uint32_t, 4>;

// Philox4x32-10 of a 128-bit counter under a 64-bit key.
PhiloxBlock philox(uint64_t key, uint64_t counter_hi, uint64_t counter_lo);

// The 64-bit key of the stream (seed, rank, purpose): a mix of the three, so nearby seeds,
// ranks and purposes give unrelated streams.
uint64_t rng_key(uint64_t seed, uint64_t rank, RngPurpose purpose);

class Rng {
 public:
  Rng(uint64_t seed, uint64_t rank, RngPurpose purpose)
      : key_(rng_key(seed, rank, purpose)) {}

  uint32_t next_u32();
  uint64_t next_u64();
  double uniform();          // [0, 1) with 53 random bits
  float uniform_f32();       // [0, 1) with 24 random bits
  double normal();           // standard normal (Box-Muller; consumes 4 words)
  uint64_t below(uint64_t n);  // uniform in [0, n), unbiased; n > 0

  // The number of 32-bit words drawn so far: all the state a checkpoint needs.
  uint64_t position() const { return position_; }
  void seek(uint64_t position) { position_ = position; }
  uint64_t key() const { return key_; }

 private:
  uint64_t key_;
  uint64_t position_ = 0;
  // Cache of the current block; valid when cached_block_ == position_ / 4.
  PhiloxBlock cache_{};
  uint64_t cached_block_ = UINT64_MAX;
};

}  // namespace loom
