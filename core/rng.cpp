#include "core/rng.h"

#include <cmath>

#include "core/error.h"

namespace loom {
namespace {

constexpr uint32_t kMul0 = 0xD2511F53u;
constexpr uint32_t kMul1 = 0xCD9E8D57u;
constexpr uint32_t kWeyl0 = 0x9E3779B9u;
constexpr uint32_t kWeyl1 = 0xBB67AE85u;

inline void mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  uint64_t p = static_cast<uint64_t>(a) * b;
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

}  // namespace

PhiloxBlock philox(uint64_t key, uint64_t counter_hi, uint64_t counter_lo) {
  uint32_t c0 = static_cast<uint32_t>(counter_lo), c1 = static_cast<uint32_t>(counter_lo >> 32);
  uint32_t c2 = static_cast<uint32_t>(counter_hi), c3 = static_cast<uint32_t>(counter_hi >> 32);
  uint32_t k0 = static_cast<uint32_t>(key), k1 = static_cast<uint32_t>(key >> 32);
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    mulhilo(kMul0, c0, hi0, lo0);
    mulhilo(kMul1, c2, hi1, lo1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += kWeyl0;
    k1 += kWeyl1;
  }
  return {c0, c1, c2, c3};
}

uint64_t rng_key(uint64_t seed, uint64_t rank, RngPurpose purpose) {
  uint64_t h = splitmix64(seed);
  h = splitmix64(h ^ (rank * 0x9E3779B97F4A7C15ull + 0x632BE59BD9B4E019ull));
  h = splitmix64(h ^ (static_cast<uint64_t>(purpose) * 0xC2B2AE3D27D4EB4Full));
  return h;
}

uint32_t Rng::next_u32() {
  uint64_t block = position_ >> 2;
  if (block != cached_block_) {
    cache_ = philox(key_, 0, block);
    cached_block_ = block;
  }
  return cache_[position_++ & 3];
}

uint64_t Rng::next_u64() {
  uint64_t lo = next_u32();
  uint64_t hi = next_u32();
  return (hi << 32) | lo;
}

double Rng::uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }

float Rng::uniform_f32() { return static_cast<float>(next_u32() >> 8) * 0x1.0p-24f; }

double Rng::normal() {
  double u1 = 1.0 - uniform();  // (0, 1]: log is finite
  double u2 = uniform();
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
}

uint64_t Rng::below(uint64_t n) {
  LOOM_ASSERT(n > 0, "Rng::below(0)");
  // Lemire's multiply-and-reject on 64 bits.
  uint64_t threshold = (0 - n) % n;
  while (true) {
    __extension__ using U128 = unsigned __int128;
    U128 m = static_cast<U128>(next_u64()) * n;
    if (static_cast<uint64_t>(m) >= threshold) return static_cast<uint64_t>(m >> 64);
  }
}

}  // namespace loom
