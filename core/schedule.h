#pragma once
// Learning-rate schedules as pure functions of the step: resuming at step s gives the
// same rate as never stopping.
#include <algorithm>
#include <cmath>
#include <cstdint>

namespace loom {

// Linear decay from lr_peak at step 0 to lr_min at total_steps (word2vec's schedule).
inline double lr_linear(int64_t step, int64_t total_steps, double lr_peak, double lr_min) {
  if (total_steps <= 0) return lr_peak;
  double frac = std::clamp(double(step) / double(total_steps), 0.0, 1.0);
  return std::max(lr_min, lr_peak * (1.0 - frac));
}

// Linear warm-up over warmup_steps, then cosine decay to lr_min at total_steps.
inline double lr_warmup_cosine(int64_t step, int64_t warmup_steps, int64_t total_steps, double lr_peak,
                               double lr_min) {
  if (warmup_steps > 0 && step < warmup_steps) return lr_peak * double(step + 1) / double(warmup_steps);
  if (total_steps <= warmup_steps) return lr_peak;
  double frac = std::clamp(double(step - warmup_steps) / double(total_steps - warmup_steps), 0.0, 1.0);
  return lr_min + 0.5 * (lr_peak - lr_min) * (1.0 + std::cos(3.141592653589793 * frac));
}

}  // namespace loom
