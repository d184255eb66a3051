// CPU reference kernels (core/kernels.h): OpenMP loops and OpenBLAS GEMMs, each family a
// float/double pair through one function template local to its file. This file holds the
// shared helpers of core/kernels_cpu_detail.h, linear and squared error; the transformer
// families live in core/kernels_cpu_<family>.cpp. Arguments were checked by the dispatch
// (core/kernels.cpp); here they are trusted.
//
// Determinism: every result depends on the inputs and their sizes only, never on timing
// or the thread count - reductions run in a fixed order inside one thread, and OpenBLAS
// splits a GEMM's output, not its inner sum, across threads.
#include "core/kernels_cpu.h"
#include "core/kernels_cpu_detail.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <climits>
#include <string>

namespace loom::cpu {
namespace detail {

int blas_int(int64_t v, const char* kernel) {
  LOOM_CHECK(v <= INT_MAX, Error,
             std::string(kernel) + ": dimension " + std::to_string(v) +
                 " exceeds the BLAS integer range; split the call");
  return static_cast<int>(v);
}

void gemm(bool ta, bool tb, int M, int N, int K, float alpha, const float* A, int lda,
          const float* B, int ldb, float beta, float* C, int ldc) {
  cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void gemm(bool ta, bool tb, int M, int N, int K, double alpha, const double* A, int lda,
          const double* B, int ldb, double beta, double* C, int ldc) {
  cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
              M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

// OpenBLAS (the build links Debian's pthread variant through FindBLAS) has a process-wide
// thread count; another BLAS has no such call and is assumed serial inside OpenMP.
void set_blas_threads(int threads) {
#if defined(OPENBLAS_VERSION)
  openblas_set_num_threads(threads);
#else
  (void)threads;
#endif
}

#if defined(OPENBLAS_VERSION)
SerialBlas::SerialBlas() : saved_(openblas_get_num_threads()) {
  if (saved_ != 1) openblas_set_num_threads(1);
}
SerialBlas::~SerialBlas() {
  if (saved_ != 1) openblas_set_num_threads(saved_);
}
#else
SerialBlas::SerialBlas() : saved_(1) {}
SerialBlas::~SerialBlas() = default;
#endif

// Note [One thread pool]
// OpenMP (the elementwise kernels, attention's heads) and OpenBLAS's own pthreads would be
// two pools of run.threads threads each: after every parallel region one pool's idle
// threads spin while the other's work, and on a machine with as many cores as threads a
// step lost ~30 % of its time to that (perf: libgomp spin + sched_yield). So the linear
// layers' GEMMs run on the OpenMP pool too: each thread multiplies a block of rows of C
// with BLAS held to one thread (SerialBlas), and OpenBLAS's pool stays asleep. A block is
// a whole number of 16-row tiles; every element of C is still one BLAS dot product over
// the full K in BLAS's order, so the result does not depend on how many threads split it.
template <class T>
void parallel_gemm(bool ta, bool tb, int M, int N, int K, T alpha, const T* A, int lda,
                   const T* B, int ldb, T beta, T* C, int ldc) {
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  constexpr int kTile = 16;
  if (threads <= 1 || M < 2 * kTile || double(M) * N * K < 2e6) {
    gemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    return;
  }
  SerialBlas serial;
  const int tiles = (M + kTile - 1) / kTile;
#pragma omp parallel num_threads(threads)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int m0 = std::min(M, tiles * t / nt * kTile), m1 = std::min(M, tiles * (t + 1) / nt * kTile);
    if (m1 > m0) {
      const T* a = ta ? A + m0 : A + int64_t(m0) * lda;   // rows m0.. of op(A)
      gemm(ta, tb, m1 - m0, N, K, alpha, a, lda, B, ldb, beta, C + int64_t(m0) * ldc, ldc);
    }
  }
}

}  // namespace detail

namespace {
using namespace detail;

// ---- linear -------------------------------------------------------------------------

template <class T>
void linear_forward_t(Tensor out_t, Tensor in_t, Tensor weight_t, Tensor bias_t) {
  const char* k = "linear_forward";
  const int64_t O = weight_t.shape()[0], I = weight_t.shape()[1], N = rows(in_t);
  T* out = ptr<T>(out_t);                 // (N, O)
  const T* in = ptr<T>(in_t);             // (N, I)
  const T* weight = ptr<T>(weight_t);     // (O, I)
  const T* bias = ptr<T>(bias_t);         // (O) or null
  if (N == 0 || O == 0) return;
  // out starts as the bias (or zero); the GEMM adds in · weightᵀ onto it.
#pragma omp parallel for schedule(static) if (N * O >= kParallelMin)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < O; ++o) out[n * O + o] = bias != nullptr ? bias[o] : T(0);
  if (I == 0) return;
  parallel_gemm(false, true, blas_int(N, k), blas_int(O, k), blas_int(I, k), T(1), in,
                blas_int(I, k), weight, blas_int(I, k), T(1), out, blas_int(O, k));
}

// dbias[o] += Σ_n dout[n, o], in n order, a block of columns per thread.
template <class T>
void column_sums_add(T* dbias, const T* dout, int64_t N, int64_t O) {
  constexpr int64_t kBlock = 64;
  const int64_t blocks = (O + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (N * O >= kParallelMin)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t o0 = b * kBlock, width = std::min(kBlock, O - o0);
    T acc[kBlock] = {};
    for (int64_t n = 0; n < N; ++n)
      for (int64_t j = 0; j < width; ++j) acc[j] += dout[n * O + o0 + j];
    for (int64_t j = 0; j < width; ++j) dbias[o0 + j] += acc[j];
  }
}

template <class T>
void linear_backward_t(Tensor din_t, Tensor dweight_t, Tensor dbias_t, Tensor dout_t,
                       Tensor in_t, Tensor weight_t) {
  const char* k = "linear_backward";
  const int64_t O = weight_t.shape()[0], I = weight_t.shape()[1], N = rows(in_t);
  T* din = ptr<T>(din_t);                 // (N, I) or null
  T* dweight = ptr<T>(dweight_t);         // (O, I)
  T* dbias = ptr<T>(dbias_t);             // (O) or null
  const T* dout = ptr<T>(dout_t);         // (N, O)
  const T* in = ptr<T>(in_t);             // (N, I)
  const T* weight = ptr<T>(weight_t);     // (O, I)
  if (din != nullptr && N > 0 && I > 0) {
    if (O == 0) {
      for (int64_t i = 0; i < N * I; ++i) din[i] = T(0);
    } else {  // din (N, I) = dout (N, O) · weight (O, I)
      parallel_gemm(false, false, blas_int(N, k), blas_int(I, k), blas_int(O, k), T(1), dout,
                    blas_int(O, k), weight, blas_int(I, k), T(0), din, blas_int(I, k));
    }
  }
  if (N == 0 || O == 0) return;
  if (I > 0)  // dweight (O, I) += doutᵀ (O, N) · in (N, I)
    parallel_gemm(true, false, blas_int(O, k), blas_int(I, k), blas_int(N, k), T(1), dout,
                  blas_int(O, k), in, blas_int(I, k), T(1), dweight, blas_int(I, k));
  if (dbias != nullptr) column_sums_add(dbias, dout, N, O);
}

// ---- squared error ------------------------------------------------------------------

template <class T>
void squared_error_forward_t(Tensor loss_t, Tensor pred_t, Tensor target_t) {
  const int64_t N = rows(pred_t), K = N == 0 ? 0 : pred_t.numel() / N;
  T* loss = ptr<T>(loss_t);               // (N)
  const T* pred = ptr<T>(pred_t);         // (N, K)
  const T* target = ptr<T>(target_t);     // (N, K)
#pragma omp parallel for schedule(static) if (N * K >= kParallelMin)
  for (int64_t n = 0; n < N; ++n) {
    T sum = 0;
    for (int64_t j = 0; j < K; ++j) {
      T d = pred[n * K + j] - target[n * K + j];
      sum += d * d;
    }
    loss[n] = T(0.5) * sum;
  }
}

template <class T>
void squared_error_backward_t(Tensor dpred_t, Tensor pred_t, Tensor target_t) {
  const int64_t total = pred_t.numel();
  T* dpred = ptr<T>(dpred_t);             // (N, K)
  const T* pred = ptr<T>(pred_t);         // (N, K)
  const T* target = ptr<T>(target_t);     // (N, K)
#pragma omp parallel for schedule(static) if (total >= kParallelMin)
  for (int64_t i = 0; i < total; ++i) dpred[i] = pred[i] - target[i];
}

}  // namespace

void linear_forward(Tensor out, Tensor in, Tensor weight, Tensor bias) {
  if (is_f64(out)) return linear_forward_t<double>(out, in, weight, bias);
  linear_forward_t<float>(out, in, weight, bias);
}

void linear_backward(Tensor din, Tensor dweight, Tensor dbias, Tensor dout, Tensor in,
                     Tensor weight) {
  if (is_f64(dweight)) return linear_backward_t<double>(din, dweight, dbias, dout, in, weight);
  linear_backward_t<float>(din, dweight, dbias, dout, in, weight);
}

void squared_error_forward(Tensor loss, Tensor pred, Tensor target) {
  if (is_f64(loss)) return squared_error_forward_t<double>(loss, pred, target);
  squared_error_forward_t<float>(loss, pred, target);
}

void squared_error_backward(Tensor dpred, Tensor pred, Tensor target) {
  if (is_f64(dpred)) return squared_error_backward_t<double>(dpred, pred, target);
  squared_error_backward_t<float>(dpred, pred, target);
}

}  // namespace loom::cpu
