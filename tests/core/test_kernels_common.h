#pragma once
// Helpers shared by the kernel-family tests (tests/core/test_kernels_*.cpp): typed views
// over std::vector, casts between precisions, and catching a kernel's error message.
#include <gtest/gtest.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "tests/support/finite_diff.h"

namespace loom::test {

constexpr size_t sz(int64_t n) { return static_cast<size_t>(n); }

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::kF32; }
template <> constexpr DType dtype_of<double>() { return DType::kF64; }
template <> constexpr DType dtype_of<int32_t>() { return DType::kI32; }

template <class T>
Tensor view(std::vector<T>& v, Shape shape, Device device = Device::cpu()) {
  return Tensor(v.data(), shape, dtype_of<T>(), device);
}

template <class T, class S>
std::vector<T> cast(const std::vector<S>& v) { return std::vector<T>(v.begin(), v.end()); }

// The loom::Error message of call(), or "no error".
inline std::string error_of(const std::function<void()>& call) {
  try {
    call();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// Σ out ⊙ r: the scalar whose gradient with respect to out is r.
inline double dot(const std::vector<double>& out, const std::vector<double>& r) {
  double s = 0;
  for (size_t i = 0; i < out.size(); ++i) s += out[i] * r[i];
  return s;
}

}  // namespace loom::test
