#pragma once
// Helpers shared by the CPU reference kernels (core/kernels_cpu*.cpp) and nothing else:
// typed pointers, the GEMM overloads, BLAS threading control and the vectorisable exp
// the float kernels use. No BLAS header here: the .cpp files that call BLAS include it.
#include <bit>
#include <cmath>
#include <cstdint>

#include "core/tensor.h"

namespace loom::cpu::detail {

// Below this many elements a loop runs on the calling thread (a parallel region costs
// more than it saves).
constexpr int64_t kParallelMin = 1 << 15;

// N of (..., X): the product of all but the last dimension.
inline int64_t rows(const Tensor& t) {
  int64_t n = 1;
  for (int i = 0; i + 1 < t.shape().rank(); ++i) n *= t.shape()[i];
  return n;
}

template <class T>
T* ptr(const Tensor& t) { return static_cast<T*>(t.data()); }

inline bool is_f64(const Tensor& t) { return t.dtype() == DType::kF64; }

// v as a BLAS int; a loom::Error naming the kernel when it does not fit.
int blas_int(int64_t v, const char* kernel);

// Row-major C (M, N) = alpha op(A) (M, K) · op(B) (K, N) + beta C, op = transpose when t*.
void gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda,
          const float* B, int ldb, float beta, float* C, int ldc);
void gemm(bool ta, bool tb, int M, int N, int K, double alpha, const double* A, int lda,
          const double* B, int ldb, double beta, double* C, int ldc);

// While alive, BLAS runs single-threaded on the calling thread: for GEMMs issued from
// inside an OpenMP region (Note [Attention threading] in core/kernels_cpu_attention.cpp).
// Restores the previous thread count. BLAS's thread count is process-wide: kernels run one
// at a time on the step's thread, so no other GEMM is in flight meanwhile.
// BLAS's own thread count (OpenBLAS; other BLAS libraries: nothing).
void set_blas_threads(int threads);

class SerialBlas {
 public:
  SerialBlas();
  ~SerialBlas();
  SerialBlas(const SerialBlas&) = delete;
  SerialBlas& operator=(const SerialBlas&) = delete;

 private:
  int saved_;
};

// Note [Vectorised exp]
// std::exp and std::tanh are library calls that GCC does not vectorise without
// -ffast-math; softmax over an 8192-word vocabulary and gelu over every MLP activation
// would spend most of their time in them. exp_approx(float) is Cephes' expf - x = n ln2 +
// r with |r| <= ln2/2, a degree-7 polynomial for e^r and 2^n put in the exponent bits -
// written branch-free so loops over it vectorise; relative error about 2 ulp over the
// clamped range [-87, 88] (below, it returns ~1e-38 instead of 0). The double version is
// std::exp: f64 runs serve the finite-difference checks, where accuracy is what counts.
inline float exp_approx(float x) {
  x = x < -87.0f ? -87.0f : x;
  x = x > 88.0f ? 88.0f : x;
  // n = round(x / ln2) by the 1.5·2²³ trick (exact for |n| < 2²²); vectorises, unlike lrint.
  float n = x * 1.44269504088896341f + 12582912.0f;
  n -= 12582912.0f;
  float r = x - n * 0.693359375f;   // ln2 split in two so r is exact
  r -= n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;   // 2^n, n in [-126, 127]
  return y * std::bit_cast<float>(bits);
}
inline double exp_approx(double x) { return std::exp(x); }

}  // namespace loom::cpu::detail
