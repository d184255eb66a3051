#pragma once
// Arena: named tensors of one dtype packed into ONE allocation, laid out once at setup
// (a model's activations, its backward scratch). Like ParamStore without gradients:
// declare() every tensor, finalize(device) once, then view() returns the tensors. Nothing
// is allocated after finalize, so a step loop that works through views allocates nothing.
// Each tensor starts on a 64-byte boundary.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/buffer.h"
#include "core/tensor.h"

namespace loom {

class Arena {
 public:
  explicit Arena(DType dtype = DType::kF32) : dtype_(dtype) {}

  // Declares a tensor; returns its index. Before finalize().
  int declare(std::string_view name, Shape shape);
  void finalize(Device device = Device::cpu());

  Tensor view(int index) const;
  const std::string& name(int index) const { return names_.at(size_t(index)); }
  int size() const { return static_cast<int>(names_.size()); }
  size_t bytes() const { return buffer_.size(); }
  DType dtype() const { return dtype_; }

 private:
  DType dtype_;
  std::vector<std::string> names_;
  std::vector<Shape> shapes_;
  std::vector<int64_t> offsets_;   // in elements
  int64_t total_ = 0;
  bool finalized_ = false;
  Buffer buffer_;
};

}  // namespace loom
