#pragma once
// The BPE encoder's memory of pieces it has merged before: piece bytes -> token ids, in
// one flat open-addressing table (no node per entry, one probe line per lookup). Most
// pieces of natural text repeat, so most pieces skip the merge loop. When `capacity`
// pieces are stored the cache starts over empty: no eviction bookkeeping, and memory stays
// bounded (about capacity x (48 + piece bytes + 4 x ids) bytes). One per thread.
#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace loom {

class BpeWordCache {
 public:
  explicit BpeWordCache(size_t capacity);

  // The ids stored for `piece`, or an empty span (pieces are never stored without ids).
  std::span<const uint32_t> find(std::string_view piece, uint64_t hash) const {
    if (slots_.empty()) return {};
    for (size_t i = hash & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.hash == 0) return {};
      if (s.hash == hash && s.key_len == piece.size() &&
          std::memcmp(keys_.data() + s.key_at, piece.data(), piece.size()) == 0)
        return {ids_.data() + s.ids_at, s.ids_len};
    }
  }
  void insert(std::string_view piece, uint64_t hash, std::span<const uint32_t> ids);

  // A well-mixed 64-bit hash of the piece; never 0 (0 marks an empty slot).
  static uint64_t hash_of(std::string_view piece) {
    uint64_t h = 0x9E3779B97F4A7C15ULL ^ piece.size();
    const char* p = piece.data();
    size_t n = piece.size();
    for (;; p += 8, n -= 8) {
      uint64_t w = 0;
      std::memcpy(&w, p, n < 8 ? n : 8);
      h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
      h ^= h >> 31;
      if (n <= 8) break;
    }
    h *= 0x94D049BB133111EBULL;
    h ^= h >> 32;
    return h | 1;
  }

 private:
  struct Slot {
    uint64_t hash;     // 0: empty
    uint32_t key_at;   // piece bytes at keys_[key_at, key_at + key_len)
    uint32_t key_len;
    uint32_t ids_at;   // ids at ids_[ids_at, ids_at + ids_len)
    uint32_t ids_len;
  };
  void clear();
  size_t capacity_;
  size_t size_ = 0;
  size_t mask_ = 0;
  std::vector<Slot> slots_;   // (2 x capacity rounded up to a power of two)
  std::string keys_;
  std::vector<uint32_t> ids_;
};

}  // namespace loom
