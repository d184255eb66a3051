#pragma once
// ParamStore: named float32 parameters declared in a fixed order and packed into ONE
// buffer, with a twin buffer of the same layout for gradients. The checkpoint, the
// optimizer and GradSync all work on this one contiguous layout.
//
// Usage: declare() every parameter (DESIGN.md names), then finalize(device) once; after
// that the layout is frozen and value()/grad() return views into the two buffers.
// Each parameter starts on a 64-byte boundary (except those declare_packed() puts right
// after the previous one); the padding between them stays zero.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/buffer.h"
#include "core/tensor.h"

namespace loom {

class ParamStore {
 public:
  struct Entry {
    std::string name;   // DESIGN.md name, e.g. "h.0.attn.c_attn.weight" or "W"
    Shape shape;        // row-major; linear weights are (out_features, in_features)
    int64_t offset = 0; // in elements from the start of the buffers
    int64_t numel = 0;
  };

  // Declares a parameter; returns its index. Names must be unique. Before finalize().
  int declare(std::string_view name, Shape shape);
  // Declares a parameter that starts where the previous one ends (no padding between
  // them), so that a run of them reads as ONE tensor through packed_value()/packed_grad():
  // BERT's query, key and value weights, three (C, C) parameters under their own names,
  // are one (3C, C) matrix for one GEMM. Before finalize(); not the first parameter.
  int declare_packed(std::string_view name, Shape shape);
  // Parameters first .. first + count − 1 (each after the first declared packed) as one
  // tensor of `shape`, whose numel is their total.
  Tensor packed_value(int first, int count, Shape shape) const;
  Tensor packed_grad(int first, int count, Shape shape) const;
  // Allocates values and gradients (zeroed) on `device`. Once. Training keeps float32
  // parameters; float64 serves gradient checks against double-precision references.
  void finalize(Device device = Device::cpu(), DType dtype = DType::kF32);
  DType dtype() const { return dtype_; }
  bool finalized() const { return finalized_; }

  int size() const { return static_cast<int>(entries_.size()); }
  const std::vector<Entry>& entries() const { return entries_; }
  const Entry& entry(int index) const;
  // Index of `name`, or -1.
  int find(std::string_view name) const;
  // Index of `name`; throws loom::Error naming the parameter if it does not exist.
  int index_of(std::string_view name) const;

  Tensor value(int index) const;
  Tensor grad(int index) const;
  Tensor value(std::string_view name) const { return value(index_of(name)); }
  Tensor grad(std::string_view name) const { return grad(index_of(name)); }

  // The whole packed buffers (padding included) as flat tensors of dtype().
  Tensor values() const { return values_.as(dtype_); }
  Tensor grads() const { return grads_.as(dtype_); }
  int64_t total_elements() const { return total_; }   // padded size of each buffer
  int64_t parameter_count() const;                    // sum of numel, no padding
  void zero_grads() { grads_.zero(); }
  Device device() const { return values_.device(); }

 private:
  int64_t packed_numel(int first, int count) const;   // asserts there is no padding

  std::vector<Entry> entries_;
  int64_t total_ = 0;
  bool finalized_ = false;
  DType dtype_ = DType::kF32;
  Buffer values_;
  Buffer grads_;
};

}  // namespace loom
