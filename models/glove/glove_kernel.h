#pragma once
// GloVe's per-example math as pure functions: the weighted least-squares loss of one
// co-occurrence non-zero with its gradient (templated on float for training and double
// for the finite-difference test), and the fused float32 AdaGrad update that training
// runs over a chunk of records.
//
// For one non-zero X_ij = x with word row w = W[i], context row c = W_ctx[j] (D,):
//   diff = w·c + b_i + b_ctx_j - log x
//   J    = 0.5 f(x) diff^2,       f(x) = min(1, (x / x_max)^alpha)
//   dJ/dw = f diff c,  dJ/dc = f diff w,  dJ/db_i = dJ/db_ctx_j = f diff
//
// Note [GloVe AdaGrad]
// GloVe's reference scales the gradient by the step size first, u = eta * g, clips u to
// [-clip, clip] (per component; the biases are not clipped), then updates with the
// accumulator as it was BEFORE this example: p -= u / sqrt(gradsq); gradsq += u^2. The
// accumulator starts at 1, so the first step is exactly eta * g and later steps shrink.
// We keep that convention (same cost curve as the reference at equal settings).
#include <cmath>
#include <cstdint>

namespace loom {

// One training record: a co-occurrence non-zero with log x and f(x) precomputed (16 bytes,
// built once at setup from the CooccurEntry partition).
struct GloveRecord {
  int32_t row = 0;     // word id i (0-based)
  int32_t col = 0;     // context id j (0-based)
  float log_x = 0;     // log X_ij
  float weight = 0;    // f(X_ij)
};

struct GloveHyper {
  float eta = 0.05f;          // AdaGrad initial step
  float grad_clip = 100.0f;   // clip of eta * gradient per component (Note [GloVe AdaGrad])
};

// f(x) = min(1, (x / x_max)^alpha).
inline double glove_weight(double x, double x_max, double alpha) {
  return x < x_max ? std::pow(x / x_max, alpha) : 1.0;
}

// Loss of one non-zero and (when the d* pointers are not null) its gradient, written (not
// accumulated). w, c, dw, dc: (D,). Returns 0.5 f diff^2. T = float or double.
template <typename T>
T glove_pair_loss_grad(const T* w, const T* c, T b, T b_ctx, T log_x, T weight, int64_t D,
                       T* dw, T* dc, T* db, T* db_ctx) {
  T dot = 0;
  for (int64_t k = 0; k < D; ++k) dot += w[k] * c[k];
  T diff = dot + b + b_ctx - log_x;
  T fdiff = weight * diff;
  if (dw != nullptr) {
    for (int64_t k = 0; k < D; ++k) {
      dw[k] = fdiff * c[k];
      dc[k] = fdiff * w[k];
    }
    *db = fdiff;
    *db_ctx = fdiff;
  }
  return T(0.5) * fdiff * diff;
}

// The parameters and AdaGrad accumulators one update touches; rows of (V, D) arrays.
struct GloveView {
  float* W;          // (V, D)
  float* W_ctx;      // (V, D)
  float* b;          // (V,)
  float* b_ctx;      // (V,)
  float* gsq_W;      // (V, D) accumulators, same layout
  float* gsq_W_ctx;  // (V, D)
  float* gsq_b;      // (V,)
  float* gsq_b_ctx;  // (V,)
  int64_t D;
};

// One AdaGrad update for one record (Note [GloVe AdaGrad]); returns its loss (before the
// update) in double. Hogwild-safe in the sense GloVe uses: racing threads may lose updates
// of shared rows, never corrupt memory.
double glove_update(const GloveView& p, const GloveRecord& r, const GloveHyper& h);

// glove_update over records [begin, end) in order; returns the summed loss.
double glove_update_range(const GloveView& p, const GloveRecord* records, int64_t begin,
                          int64_t end, const GloveHyper& h);

}  // namespace loom
