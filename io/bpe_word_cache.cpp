#include "io/bpe_word_cache.h"

#include <bit>

namespace loom {

BpeWordCache::BpeWordCache(size_t capacity) : capacity_(capacity) {
  if (capacity_ == 0) return;
  slots_.assign(std::bit_ceil(capacity_ * 2), Slot{0, 0, 0, 0, 0});
  mask_ = slots_.size() - 1;
}

void BpeWordCache::clear() {
  std::memset(slots_.data(), 0, slots_.size() * sizeof(Slot));
  keys_.clear();
  ids_.clear();
  size_ = 0;
}

void BpeWordCache::insert(std::string_view piece, uint64_t hash, std::span<const uint32_t> ids) {
  if (capacity_ == 0 || ids.empty()) return;
  if (size_ >= capacity_ || keys_.size() + piece.size() > 0xFFFFFFFFu ||
      ids_.size() + ids.size() > 0xFFFFFFFFu)
    clear();
  size_t i = hash & mask_;
  while (slots_[i].hash != 0) i = (i + 1) & mask_;   // callers insert only after a miss
  slots_[i] = Slot{hash, static_cast<uint32_t>(keys_.size()), static_cast<uint32_t>(piece.size()),
                   static_cast<uint32_t>(ids_.size()), static_cast<uint32_t>(ids.size())};
  keys_.append(piece);
  ids_.insert(ids_.end(), ids.begin(), ids.end());
  ++size_;
}

}  // namespace loom
