#pragma once
// Gradient checks in double precision (STYLE.md rule 17): central finite differences of a
// scalar function of a buffer, and an element-wise comparison that prints the index, the
// expected and the actual value of the first mismatches.
//
// Typical use for a kernel family: run the kernel in f64, define the scalar
// L = Σ out ⊙ R with a fixed random R (so dout = R), compute the analytic gradients with
// the *_backward kernel, then for each input x: expect_close(analytic, numeric_grad(x, L)).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "core/rng.h"

namespace loom::test {

// dL/dx[i] = (L(x + h e_i) − L(x − h e_i)) / 2h for every i; x is restored afterwards.
// The error is O(h²) for smooth L (exact up to rounding for L linear or quadratic in x).
inline std::vector<double> numeric_grad(std::span<double> x, const std::function<double()>& loss,
                                        double h = 1e-5) {
  std::vector<double> grad(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double plus = loss();
    x[i] = saved - h;
    const double minus = loss();
    x[i] = saved;
    grad[i] = (plus - minus) / (2 * h);
  }
  return grad;
}

// |actual − expected| <= atol + rtol |expected| for every element; reports the first few
// failures with index, expected and actual.
template <class A, class E>
void expect_close(std::span<const A> actual, std::span<const E> expected, double atol,
                  double rtol, const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what << ": sizes differ";
  int reported = 0;
  size_t failures = 0;
  for (size_t i = 0; i < actual.size(); ++i) {
    const double a = double(actual[i]), e = double(expected[i]);
    if (std::abs(a - e) <= atol + rtol * std::abs(e)) continue;
    ++failures;
    if (reported++ < 5)
      ADD_FAILURE() << what << ": index " << i << ": expected " << e << ", actual " << a
                    << " (difference " << a - e << ")";
  }
  EXPECT_EQ(failures, 0u) << what << ": " << failures << " of " << actual.size()
                          << " elements out of tolerance";
}

template <class A, class E>
void expect_close(const std::vector<A>& actual, const std::vector<E>& expected, double atol,
                  double rtol, const std::string& what) {
  expect_close(std::span<const A>(actual), std::span<const E>(expected), atol, rtol, what);
}

// n values uniform in [-1, 1) from the test stream `stream` (same values every run).
template <class T>
std::vector<T> random_values(int64_t n, uint64_t stream) {
  Rng rng(stream, 0, RngPurpose::kTest);
  std::vector<T> v(static_cast<size_t>(n));
  for (T& x : v) x = static_cast<T>(2.0 * rng.uniform() - 1.0);
  return v;
}

}  // namespace loom::test
