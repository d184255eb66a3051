#include "core/arena.h"

namespace loom {

int Arena::declare(std::string_view name, Shape shape) {
  LOOM_ASSERT(!finalized_, "Arena::declare after finalize");
  const int64_t align = int64_t(Buffer::kAlignment / dtype_size(dtype_));
  names_.emplace_back(name);
  shapes_.push_back(shape);
  offsets_.push_back(total_);
  total_ += (shape.numel() + align - 1) / align * align;
  return size() - 1;
}

void Arena::finalize(Device device) {
  LOOM_ASSERT(!finalized_, "Arena::finalize called twice");
  buffer_ = Buffer(size_t(total_) * dtype_size(dtype_), device);
  finalized_ = true;
}

Tensor Arena::view(int index) const {
  LOOM_ASSERT(finalized_, "Arena used before finalize");
  const size_t i = size_t(index);
  LOOM_ASSERT(i < names_.size(), "Arena index out of range");
  char* base = static_cast<char*>(buffer_.data()) + size_t(offsets_[i]) * dtype_size(dtype_);
  return Tensor(base, shapes_[i], dtype_, buffer_.device());
}

}  // namespace loom
