#pragma once
// Tensor: a non-owning, row-major view {data, shape, dtype, device}. Never owns memory:
// Buffer owns, Tensor reads. Cheap to copy; pass by value.
#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <string>

#include "core/device.h"
#include "core/error.h"

namespace loom {

enum class DType : uint8_t { kF32, kF64, kBF16, kF16, kI32, kI64, kU8, kU64 };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);  // "f32", "i64", ...

// Up to kMaxRank dimensions, stored inline (no allocation).
class Shape {
 public:
  static constexpr int kMaxRank = 4;
  Shape() = default;
  Shape(std::initializer_list<int64_t> dims);
  int rank() const { return rank_; }
  int64_t operator[](int i) const { return dims_[static_cast<size_t>(i)]; }
  int64_t numel() const;
  bool operator==(const Shape& other) const;
  std::string str() const;  // "(3, 4)"
  static Shape from(const int64_t* dims, int rank);

 private:
  std::array<int64_t, kMaxRank> dims_{};
  int rank_ = 0;
};

class Tensor {
 public:
  Tensor() = default;
  Tensor(void* data, Shape shape, DType dtype, Device device = Device::cpu())
      : data_(data), shape_(shape), dtype_(dtype), device_(device) {}

  // Typed 1-D views over host or device memory.
  static Tensor of(float* p, int64_t n, Device d = Device::cpu()) { return {p, {n}, DType::kF32, d}; }
  static Tensor of(double* p, int64_t n, Device d = Device::cpu()) { return {p, {n}, DType::kF64, d}; }
  static Tensor of(int32_t* p, int64_t n, Device d = Device::cpu()) { return {p, {n}, DType::kI32, d}; }
  static Tensor of(int64_t* p, int64_t n, Device d = Device::cpu()) { return {p, {n}, DType::kI64, d}; }
  static Tensor of(uint8_t* p, int64_t n, Device d = Device::cpu()) { return {p, {n}, DType::kU8, d}; }
  static Tensor of(uint64_t* p, int64_t n, Device d = Device::cpu()) { return {p, {n}, DType::kU64, d}; }

  void* data() const { return data_; }
  const Shape& shape() const { return shape_; }
  DType dtype() const { return dtype_; }
  Device device() const { return device_; }
  int64_t numel() const { return shape_.numel(); }
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype_); }
  bool empty() const { return numel() == 0; }

  // Checked typed access: asserts the dtype matches.
  float* f32() const { check(DType::kF32); return static_cast<float*>(data_); }
  double* f64() const { check(DType::kF64); return static_cast<double*>(data_); }
  int32_t* i32() const { check(DType::kI32); return static_cast<int32_t*>(data_); }
  int64_t* i64() const { check(DType::kI64); return static_cast<int64_t*>(data_); }

  // The same memory seen with another shape of equal numel.
  Tensor view(Shape shape) const;
  // Elements [begin, begin + count) of the flattened tensor, as a 1-D view.
  Tensor slice(int64_t begin, int64_t count) const;

 private:
  void check(DType want) const {
    LOOM_ASSERT(dtype_ == want, "tensor dtype mismatch");
  }
  void* data_ = nullptr;
  Shape shape_{};
  DType dtype_ = DType::kF32;
  Device device_{};
};

}  // namespace loom
