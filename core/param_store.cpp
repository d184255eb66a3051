#include "core/param_store.h"

namespace loom {
namespace {
constexpr int64_t kAlignElements = static_cast<int64_t>(Buffer::kAlignment / sizeof(float));
}

int ParamStore::declare(std::string_view name, Shape shape) {
  LOOM_ASSERT(!finalized_, "ParamStore::declare after finalize");
  LOOM_CHECK(find(name) < 0, Error, "parameter '" + std::string(name) + "' declared twice");
  Entry e;
  e.name = std::string(name);
  e.shape = shape;
  e.numel = shape.numel();
  e.offset = total_;
  total_ += (e.numel + kAlignElements - 1) / kAlignElements * kAlignElements;
  entries_.push_back(std::move(e));
  return static_cast<int>(entries_.size()) - 1;
}

int ParamStore::declare_packed(std::string_view name, Shape shape) {
  LOOM_ASSERT(!finalized_, "ParamStore::declare_packed after finalize");
  LOOM_ASSERT(!entries_.empty(), "ParamStore::declare_packed needs a parameter to follow");
  LOOM_CHECK(find(name) < 0, Error, "parameter '" + std::string(name) + "' declared twice");
  const Entry& prev = entries_.back();
  Entry e;
  e.name = std::string(name);
  e.shape = shape;
  e.numel = shape.numel();
  e.offset = prev.offset + prev.numel;
  // The next declare() starts on a boundary again: offsets stay aligned after a packed run.
  total_ = (e.offset + e.numel + kAlignElements - 1) / kAlignElements * kAlignElements;
  entries_.push_back(std::move(e));
  return static_cast<int>(entries_.size()) - 1;
}

Tensor ParamStore::packed_value(int first, int count, Shape shape) const {
  LOOM_ASSERT(finalized_, "ParamStore used before finalize");
  return values().slice(entry(first).offset, packed_numel(first, count)).view(shape);
}

Tensor ParamStore::packed_grad(int first, int count, Shape shape) const {
  LOOM_ASSERT(finalized_, "ParamStore used before finalize");
  return grads().slice(entry(first).offset, packed_numel(first, count)).view(shape);
}

int64_t ParamStore::packed_numel(int first, int count) const {
  LOOM_ASSERT(count >= 1, "ParamStore: an empty packed run");
  int64_t n = entry(first).numel;
  for (int i = first + 1; i < first + count; ++i) {
    LOOM_ASSERT(entry(i).offset == entry(i - 1).offset + entry(i - 1).numel,
                "ParamStore: a packed run with padding (declare_packed after the first)");
    n += entry(i).numel;
  }
  return n;
}

void ParamStore::finalize(Device device, DType dtype) {
  LOOM_ASSERT(!finalized_, "ParamStore::finalize called twice");
  LOOM_ASSERT(dtype == DType::kF32 || dtype == DType::kF64, "ParamStore holds f32 or f64");
  dtype_ = dtype;
  size_t bytes = static_cast<size_t>(total_) * dtype_size(dtype);
  values_ = Buffer(bytes, device);
  grads_ = Buffer(bytes, device);
  finalized_ = true;
}

const ParamStore::Entry& ParamStore::entry(int index) const {
  LOOM_ASSERT(index >= 0 && index < size(), "parameter index out of range");
  return entries_[static_cast<size_t>(index)];
}

int ParamStore::find(std::string_view name) const {
  for (size_t i = 0; i < entries_.size(); ++i)
    if (entries_[i].name == name) return static_cast<int>(i);
  return -1;
}

int ParamStore::index_of(std::string_view name) const {
  int i = find(name);
  LOOM_CHECK(i >= 0, Error, "no parameter named '" + std::string(name) + "'");
  return i;
}

Tensor ParamStore::value(int index) const {
  LOOM_ASSERT(finalized_, "ParamStore used before finalize");
  const Entry& e = entry(index);
  return values().slice(e.offset, e.numel).view(e.shape);
}

Tensor ParamStore::grad(int index) const {
  LOOM_ASSERT(finalized_, "ParamStore used before finalize");
  const Entry& e = entry(index);
  return grads().slice(e.offset, e.numel).view(e.shape);
}

int64_t ParamStore::parameter_count() const {
  int64_t n = 0;
  for (const Entry& e : entries_) n += e.numel;
  return n;
}

}  // namespace loom
