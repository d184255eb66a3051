// The linear and squared-error kernels (core/kernels.h) on the CPU reference: forward
// against naive double loops on odd sizes, backward against central finite differences
// in double precision, accumulation into weight gradients, and the dispatch's refusals
// (CUDA tensors without a CUDA kernel, mixed dtypes, wrong shapes).
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <string>
#include <vector>

#include "core/kernels.h"
#include "tests/support/finite_diff.h"

namespace loom::test {
namespace {

constexpr int64_t N = 7, I = 13, O = 5;   // odd sizes: no kernel's block size divides them

constexpr size_t sz(int64_t n) { return static_cast<size_t>(n); }

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::kF32; }
template <> constexpr DType dtype_of<double>() { return DType::kF64; }

template <class T>
Tensor view(std::vector<T>& v, Shape shape, Device device = Device::cpu()) {
  return Tensor(v.data(), shape, dtype_of<T>(), device);
}

// out (N, O) = in (N, I) · weight (O, I)ᵀ + bias (O), in double.
std::vector<double> naive_linear(const std::vector<double>& in, const std::vector<double>& weight,
                                 const std::vector<double>* bias, int64_t rows) {
  std::vector<double> out(sz(rows * O));
  for (int64_t n = 0; n < rows; ++n)
    for (int64_t o = 0; o < O; ++o) {
      double s = bias != nullptr ? (*bias)[sz(o)] : 0.0;
      for (int64_t i = 0; i < I; ++i) s += in[sz(n * I + i)] * weight[sz(o * I + i)];
      out[sz(n * O + o)] = s;
    }
  return out;
}

template <class T>
std::vector<T> cast(const std::vector<double>& v) { return std::vector<T>(v.begin(), v.end()); }

template <class T>
class LinearForward : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(LinearForward, FloatTypes);

TYPED_TEST(LinearForward, MatchesNaiveLoopWithAndWithoutBias) {
  using T = TypeParam;
  const double tol = sizeof(T) == 4 ? 1e-5 : 1e-13;
  std::vector<double> in = random_values<double>(N * I, 1), weight = random_values<double>(O * I, 2),
                      bias = random_values<double>(O, 3);
  // The kernel sees the values rounded to T; the reference is computed from those.
  std::vector<T> in_t = cast<T>(in), weight_t = cast<T>(weight), bias_t = cast<T>(bias);
  in.assign(in_t.begin(), in_t.end());
  weight.assign(weight_t.begin(), weight_t.end());
  bias.assign(bias_t.begin(), bias_t.end());
  std::vector<T> out(sz(N * O), T(99));
  linear_forward(view(out, {N, O}), view(in_t, {N, I}), view(weight_t, {O, I}), view(bias_t, {O}));
  expect_close(out, naive_linear(in, weight, &bias, N), tol, tol, "out with bias");
  linear_forward(view(out, {N, O}), view(in_t, {N, I}), view(weight_t, {O, I}), Tensor{});
  expect_close(out, naive_linear(in, weight, nullptr, N), tol, tol, "out without bias");
}

TYPED_TEST(LinearForward, FlattensLeadingDimensions) {
  using T = TypeParam;
  const double tol = sizeof(T) == 4 ? 1e-5 : 1e-13;
  constexpr int64_t B = 2, S = 3;   // (B, S, I) is read as (B * S, I)
  std::vector<T> in = cast<T>(random_values<double>(B * S * I, 4));
  std::vector<T> weight = cast<T>(random_values<double>(O * I, 5));
  std::vector<T> out(sz(B * S * O));
  linear_forward(view(out, {B, S, O}), view(in, {B, S, I}), view(weight, {O, I}), Tensor{});
  std::vector<double> expected = naive_linear(std::vector<double>(in.begin(), in.end()),
                                              std::vector<double>(weight.begin(), weight.end()),
                                              nullptr, B * S);
  expect_close(out, expected, tol, tol, "out (B, S, O)");
}

// L = Σ out ⊙ R for a fixed R, so dL/dout = R.
double linear_objective(std::vector<double>& in, std::vector<double>& weight,
                        std::vector<double>& bias, const std::vector<double>& r) {
  std::vector<double> out(sz(N * O));
  linear_forward(view(out, {N, O}), view(in, {N, I}), view(weight, {O, I}), view(bias, {O}));
  double l = 0;
  for (size_t i = 0; i < out.size(); ++i) l += out[i] * r[i];
  return l;
}

TEST(LinearBackward, MatchesCentralFiniteDifferencesInDouble) {
  std::vector<double> in = random_values<double>(N * I, 11), weight = random_values<double>(O * I, 12),
                      bias = random_values<double>(O, 13), r = random_values<double>(N * O, 14);
  std::vector<double> din(sz(N * I), 99.0), dweight(sz(O * I), 0.0), dbias(sz(O), 0.0);
  linear_backward(view(din, {N, I}), view(dweight, {O, I}), view(dbias, {O}), view(r, {N, O}),
                  view(in, {N, I}), view(weight, {O, I}));
  auto loss = [&] { return linear_objective(in, weight, bias, r); };
  // L is linear in each argument: the central difference is exact up to rounding.
  expect_close(din, numeric_grad(in, loss), 1e-8, 1e-8, "din");
  expect_close(dweight, numeric_grad(weight, loss), 1e-8, 1e-8, "dweight");
  expect_close(dbias, numeric_grad(bias, loss), 1e-8, 1e-8, "dbias");
}

TEST(LinearBackward, F32AgreesWithF64) {
  std::vector<double> in = random_values<double>(N * I, 21), weight = random_values<double>(O * I, 22),
                      dout = random_values<double>(N * O, 23);
  std::vector<double> din(sz(N * I)), dweight(sz(O * I)), dbias(sz(O));
  std::vector<float> in_f = cast<float>(in), weight_f = cast<float>(weight), dout_f = cast<float>(dout);
  in.assign(in_f.begin(), in_f.end());
  weight.assign(weight_f.begin(), weight_f.end());
  dout.assign(dout_f.begin(), dout_f.end());
  std::vector<float> din_f(sz(N * I)), dweight_f(sz(O * I)), dbias_f(sz(O));
  linear_backward(view(din, {N, I}), view(dweight, {O, I}), view(dbias, {O}), view(dout, {N, O}),
                  view(in, {N, I}), view(weight, {O, I}));
  linear_backward(view(din_f, {N, I}), view(dweight_f, {O, I}), view(dbias_f, {O}),
                  view(dout_f, {N, O}), view(in_f, {N, I}), view(weight_f, {O, I}));
  expect_close(din_f, din, 1e-5, 1e-5, "din f32");
  expect_close(dweight_f, dweight, 1e-5, 1e-5, "dweight f32");
  expect_close(dbias_f, dbias, 1e-5, 1e-5, "dbias f32");
}

TEST(LinearBackward, AccumulatesWeightGradientsAndWritesDin) {
  std::vector<float> in = cast<float>(random_values<double>(N * I, 31));
  std::vector<float> weight = cast<float>(random_values<double>(O * I, 32));
  std::vector<float> dout = cast<float>(random_values<double>(N * O, 33));
  std::vector<float> din(sz(N * I)), dweight(sz(O * I)), dbias(sz(O));
  auto backward = [&] {
    linear_backward(view(din, {N, I}), view(dweight, {O, I}), view(dbias, {O}), view(dout, {N, O}),
                    view(in, {N, I}), view(weight, {O, I}));
  };
  backward();
  std::vector<float> din_once = din, dweight_once = dweight, dbias_once = dbias;
  backward();
  // g + g = 2g exactly in float, and the second call computes the same g.
  std::vector<float> dweight_twice(dweight_once.size()), dbias_twice(dbias_once.size());
  for (size_t i = 0; i < dweight_once.size(); ++i) dweight_twice[i] = 2 * dweight_once[i];
  for (size_t i = 0; i < dbias_once.size(); ++i) dbias_twice[i] = 2 * dbias_once[i];
  expect_close(dweight, dweight_twice, 0, 0, "dweight after two calls");
  expect_close(dbias, dbias_twice, 0, 0, "dbias after two calls");
  expect_close(din, din_once, 0, 0, "din after two calls (written, not accumulated)");
  // Optional gradients: no din, no dbias.
  std::vector<float> dweight_only(sz(O * I));
  linear_backward(Tensor{}, view(dweight_only, {O, I}), Tensor{}, view(dout, {N, O}),
                  view(in, {N, I}), view(weight, {O, I}));
  expect_close(dweight_only, dweight_once, 0, 0, "dweight without din and dbias");
}

TEST(SquaredError, ForwardAndBackwardInDouble) {
  constexpr int64_t K = 3;
  std::vector<double> pred = random_values<double>(N * K, 41), target = random_values<double>(N * K, 42);
  std::vector<double> loss(sz(N)), dpred(sz(N * K), 99.0);
  squared_error_forward(view(loss, {N}), view(pred, {N, K}), view(target, {N, K}));
  std::vector<double> expected(sz(N));
  for (int64_t n = 0; n < N; ++n)
    for (int64_t k = 0; k < K; ++k) {
      double d = pred[sz(n * K + k)] - target[sz(n * K + k)];
      expected[sz(n)] += 0.5 * d * d;
    }
  expect_close(loss, expected, 1e-15, 1e-14, "loss");
  squared_error_backward(view(dpred, {N, K}), view(pred, {N, K}), view(target, {N, K}));
  auto total = [&] {
    std::vector<double> l(sz(N));
    squared_error_forward(view(l, {N}), view(pred, {N, K}), view(target, {N, K}));
    double s = 0;
    for (double x : l) s += x;
    return s;
  };
  expect_close(dpred, numeric_grad(pred, total), 1e-8, 1e-8, "dpred");
}

// A "CUDA" tensor over host memory: the dispatch must refuse it before touching memory.
TEST(KernelDispatch, CudaTensorWithoutCudaKernelIsAnErrorNamingKernelAndDevice) {
  std::vector<float> out(sz(N * O), 7.0f), in(sz(N * I), 1.0f), weight(sz(O * I), 1.0f);
  const Device gpu = Device::cuda(0);
  auto expect_refused = [](const std::function<void()>& call, const std::string& kernel) {
    try {
      call();
      ADD_FAILURE() << kernel << " accepted CUDA tensors";
    } catch (const Error& e) {
      std::string what = e.what();
      EXPECT_NE(what.find(kernel), std::string::npos) << what;
      EXPECT_NE(what.find("cuda:0"), std::string::npos) << what;
    }
  };
  expect_refused([&] {
    linear_forward(view(out, {N, O}, gpu), view(in, {N, I}, gpu), view(weight, {O, I}, gpu), Tensor{});
  }, "linear_forward");
  expect_refused([&] {
    linear_backward(view(in, {N, I}, gpu), view(weight, {O, I}, gpu), Tensor{},
                    view(out, {N, O}, gpu), view(in, {N, I}, gpu), view(weight, {O, I}, gpu));
  }, "linear_backward");
  std::vector<float> loss(sz(N));
  expect_refused([&] {
    squared_error_forward(view(loss, {N}, gpu), view(out, {N, O}, gpu), view(out, {N, O}, gpu));
  }, "squared_error_forward");
  for (float v : out) ASSERT_EQ(v, 7.0f) << "a refused kernel wrote its output";
}

TEST(KernelDispatch, BadArgumentsAreErrorsNamingTheArgument) {
  std::vector<float> out(sz(N * O)), in(sz(N * I)), weight(sz(O * I));
  std::vector<double> in64(sz(N * I));
  auto message = [](const std::function<void()>& call) -> std::string {
    try {
      call();
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  };
  std::string m = message([&] {   // weight (O, I - 1)
    linear_forward(view(out, {N, O}), view(in, {N, I}), Tensor(weight.data(), {O, I - 1}, DType::kF32), Tensor{});
  });
  EXPECT_NE(m.find("linear_forward: in must be"), std::string::npos) << m;
  m = message([&] {
    linear_forward(view(out, {N, O}), view(in64, {N, I}), view(weight, {O, I}), Tensor{});
  });
  EXPECT_NE(m.find("one dtype"), std::string::npos) << m;
  m = message([&] {
    linear_forward(view(out, {N, O}), view(in, {N, I}), view(weight, {O, I}, Device::cuda(1)), Tensor{});
  });
  EXPECT_NE(m.find("weight on cuda:1"), std::string::npos) << m;
  m = message([&] {
    linear_backward(Tensor{}, Tensor{}, Tensor{}, view(out, {N, O}), view(in, {N, I}), view(weight, {O, I}));
  });
  EXPECT_NE(m.find("'dweight' is missing"), std::string::npos) << m;
}

}  // namespace
}  // namespace loom::test
