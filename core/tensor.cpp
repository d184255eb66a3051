#include "core/tensor.h"

namespace loom {

size_t dtype_size(DType dtype) {
  switch (dtype) {
    case DType::kF32: return 4;
    case DType::kF64: return 8;
    case DType::kBF16: return 2;
    case DType::kF16: return 2;
    case DType::kI32: return 4;
    case DType::kI64: return 8;
    case DType::kU8: return 1;
    case DType::kU64: return 8;
  }
  LOOM_ASSERT(false, "unknown dtype");
  return 0;
}

const char* dtype_name(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "f32";
    case DType::kF64: return "f64";
    case DType::kBF16: return "bf16";
    case DType::kF16: return "f16";
    case DType::kI32: return "i32";
    case DType::kI64: return "i64";
    case DType::kU8: return "u8";
    case DType::kU64: return "u64";
  }
  return "?";
}

Shape::Shape(std::initializer_list<int64_t> dims) {
  LOOM_ASSERT(dims.size() <= static_cast<size_t>(kMaxRank), "too many dimensions");
  for (int64_t d : dims) {
    LOOM_ASSERT(d >= 0, "negative dimension");
    dims_[static_cast<size_t>(rank_++)] = d;
  }
}

Shape Shape::from(const int64_t* dims, int rank) {
  LOOM_ASSERT(rank >= 0 && rank <= kMaxRank, "bad rank");
  Shape s;
  for (int i = 0; i < rank; ++i) {
    LOOM_ASSERT(dims[i] >= 0, "negative dimension");
    s.dims_[static_cast<size_t>(i)] = dims[i];
  }
  s.rank_ = rank;
  return s;
}

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int i = 0; i < rank_; ++i) n *= dims_[static_cast<size_t>(i)];
  return n;
}

bool Shape::operator==(const Shape& other) const {
  if (rank_ != other.rank_) return false;
  for (int i = 0; i < rank_; ++i)
    if (dims_[static_cast<size_t>(i)] != other.dims_[static_cast<size_t>(i)]) return false;
  return true;
}

std::string Shape::str() const {
  std::string s = "(";
  for (int i = 0; i < rank_; ++i) {
    if (i) s += ", ";
    s += std::to_string(dims_[static_cast<size_t>(i)]);
  }
  if (rank_ == 1) s += ",";
  return s + ")";
}

Tensor Tensor::view(Shape shape) const {
  LOOM_ASSERT(shape.numel() == numel(), "view must keep the element count");
  return Tensor(data_, shape, dtype_, device_);
}

Tensor Tensor::slice(int64_t begin, int64_t count) const {
  LOOM_ASSERT(begin >= 0 && count >= 0 && begin + count <= numel(), "slice out of range");
  auto* base = static_cast<std::byte*>(data_) + static_cast<size_t>(begin) * dtype_size(dtype_);
  return Tensor(base, {count}, dtype_, device_);
}

}  // namespace loom
