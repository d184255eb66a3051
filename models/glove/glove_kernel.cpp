// GloVe's fused float32 AdaGrad update (glove_kernel.h). GCC vectorises both loops over D
// (the dot product reduction; the two row updates with per-component clipping) with
// -march=native and -fno-math-errno for this file, so that sqrt has no errno branch
// (models/CMakeLists.txt; checked with -fopt-info-vec-optimized).
#include "models/glove/glove_kernel.h"

#include <algorithm>

namespace loom {

double glove_update(const GloveView& p, const GloveRecord& r, const GloveHyper& h) {
  const int64_t D = p.D;
  float* __restrict w = p.W + static_cast<int64_t>(r.row) * D;        // (D,)
  float* __restrict c = p.W_ctx + static_cast<int64_t>(r.col) * D;    // (D,)
  float* __restrict gw = p.gsq_W + static_cast<int64_t>(r.row) * D;   // (D,)
  float* __restrict gc = p.gsq_W_ctx + static_cast<int64_t>(r.col) * D;

  float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
  for (int64_t k = 0; k < D; ++k) dot += w[k] * c[k];

  const float diff = dot + p.b[r.row] + p.b_ctx[r.col] - r.log_x;
  const float fdiff = r.weight * diff;
  const double loss = 0.5 * static_cast<double>(fdiff) * static_cast<double>(diff);
  if (!std::isfinite(fdiff)) return loss;   // never write a NaN/Inf into the model
  const float u = h.eta * fdiff;            // eta * dJ/d(b), also the row scale
  const float clip = h.grad_clip;

#pragma omp simd
  for (int64_t k = 0; k < D; ++k) {
    float uw = std::clamp(u * c[k], -clip, clip);   // eta * dJ/dw_k, clipped
    float uc = std::clamp(u * w[k], -clip, clip);   // eta * dJ/dc_k, clipped
    w[k] -= uw / std::sqrt(gw[k]);
    c[k] -= uc / std::sqrt(gc[k]);
    gw[k] += uw * uw;
    gc[k] += uc * uc;
  }
  p.b[r.row] -= u / std::sqrt(p.gsq_b[r.row]);
  p.b_ctx[r.col] -= u / std::sqrt(p.gsq_b_ctx[r.col]);
  p.gsq_b[r.row] += u * u;
  p.gsq_b_ctx[r.col] += u * u;
  return loss;
}

double glove_update_range(const GloveView& p, const GloveRecord* records, int64_t begin,
                          int64_t end, const GloveHyper& h) {
  double loss = 0.0;
  for (int64_t i = begin; i < end; ++i) loss += glove_update(p, records[i], h);
  return loss;
}

}  // namespace loom
