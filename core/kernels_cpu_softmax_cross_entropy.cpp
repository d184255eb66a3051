// CPU reference of the fused softmax cross-entropy (core/kernels.h), one row per logit
// vector x (V):
//   forward:  m = max x, lse = m + log Σ e^(x − m), loss = lse − x[target]
//   backward: dlogits = (e^(x − lse) − onehot(target)) · scale, one pass per row using the
//             saved lse (no second max/sum pass); each element is read before it is
//             written, so dlogits may be the logits' memory.
// Rows whose target is ignore_index get loss 0, lse 0 and a zero gradient. Targets are
// range-checked before anything is written. Rows go to threads; each row's sums run in
// a fixed order (omp simd reductions), so results never depend on the thread count.
// Float rows use exp_approx (Note [Vectorised exp] in core/kernels_cpu_detail.h).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "core/kernels_cpu.h"
#include "core/kernels_cpu_detail.h"

namespace loom::cpu {
namespace {
using namespace detail;

// Every target in [0, V) or ignore_index; otherwise a loom::Error naming the row.
void check_targets(const char* kernel, const int32_t* targets, int64_t N, int64_t V,
                   int ignore_index) {
  for (int64_t n = 0; n < N; ++n) {
    const int32_t y = targets[n];
    if ((y >= 0 && y < V) || y == ignore_index) continue;
    throw Error(std::string(kernel) + ": targets[" + std::to_string(n) + "] = " +
                std::to_string(y) + " is outside [0, " + std::to_string(V) +
                ") and is not ignore_index (" + std::to_string(ignore_index) + ")");
  }
}

// logsumexp of x (V).
template <class F>
F row_logsumexp(const F* x, int64_t V) {
  F m = -std::numeric_limits<F>::infinity();
#pragma omp simd reduction(max : m)
  for (int64_t v = 0; v < V; ++v) m = std::max(m, x[v]);
  F sum = 0;
#pragma omp simd reduction(+ : sum)
  for (int64_t v = 0; v < V; ++v) sum += exp_approx(x[v] - m);
  return m + std::log(sum);
}

template <class F>
void softmax_cross_entropy_forward_t(Tensor loss_t, Tensor lse_t, Tensor logits_t,
                                     Tensor targets_t, int ignore_index) {
  const int64_t N = rows(logits_t), V = logits_t.shape()[logits_t.shape().rank() - 1];
  F* loss = ptr<F>(loss_t);                          // (N)
  F* lse = ptr<F>(lse_t);                            // (N)
  const F* logits = ptr<F>(logits_t);                // (N, V)
  const int32_t* targets = ptr<int32_t>(targets_t);  // (N)
  check_targets("softmax_cross_entropy_forward", targets, N, V, ignore_index);
#pragma omp parallel for schedule(static) if (N * V >= kParallelMin)
  for (int64_t n = 0; n < N; ++n) {
    if (targets[n] == ignore_index) {
      loss[n] = F(0);
      lse[n] = F(0);
      continue;
    }
    const F* x = logits + n * V;
    const F l = row_logsumexp(x, V);
    lse[n] = l;
    loss[n] = l - x[targets[n]];
  }
}

template <class F>
void softmax_cross_entropy_backward_t(Tensor dlogits_t, Tensor logits_t, Tensor lse_t,
                                      Tensor targets_t, int ignore_index, double scale_d) {
  const int64_t N = rows(logits_t), V = logits_t.shape()[logits_t.shape().rank() - 1];
  F* dlogits = ptr<F>(dlogits_t);                    // (N, V), may be logits' memory
  const F* logits = ptr<F>(logits_t);                // (N, V)
  const F* lse = ptr<F>(lse_t);                      // (N)
  const int32_t* targets = ptr<int32_t>(targets_t);  // (N)
  check_targets("softmax_cross_entropy_backward", targets, N, V, ignore_index);
  const F scale = F(scale_d);
#pragma omp parallel for schedule(static) if (N * V >= kParallelMin)
  for (int64_t n = 0; n < N; ++n) {
    F* d = dlogits + n * V;
    if (targets[n] == ignore_index) {
      std::fill(d, d + V, F(0));
      continue;
    }
    const F* x = logits + n * V;
    const F l = lse[n];
#pragma omp simd
    for (int64_t v = 0; v < V; ++v) d[v] = exp_approx(x[v] - l) * scale;
    d[targets[n]] -= scale;
  }
}

}  // namespace

void softmax_cross_entropy_forward(Tensor loss, Tensor lse, Tensor logits, Tensor targets,
                                   int ignore_index) {
  if (is_f64(loss))
    return softmax_cross_entropy_forward_t<double>(loss, lse, logits, targets, ignore_index);
  softmax_cross_entropy_forward_t<float>(loss, lse, logits, targets, ignore_index);
}

void softmax_cross_entropy_backward(Tensor dlogits, Tensor logits, Tensor lse, Tensor targets,
                                    int ignore_index, double scale) {
  if (is_f64(dlogits))
    return softmax_cross_entropy_backward_t<double>(dlogits, logits, lse, targets,
                                                    ignore_index, scale);
  softmax_cross_entropy_backward_t<float>(dlogits, logits, lse, targets, ignore_index, scale);
}

}  // namespace loom::cpu
