// Walker's alias table (noise_table.h), Vose's stable construction in double precision.
#include "models/word2vec/noise_table.h"

#include <cmath>

#include "core/error.h"

namespace loom {

NoiseTable::NoiseTable(const std::vector<int64_t>& counts, double power) {
  const size_t V = counts.size();
  LOOM_CHECK(V >= 1, DataError, "negative sampling: the vocabulary is empty");
  std::vector<double> scaled(V);   // (V,) P(w) * V
  double sum = 0;
  for (size_t i = 0; i < V; ++i) sum += scaled[i] = std::pow(static_cast<double>(counts[i]), power);
  LOOM_CHECK(sum > 0, DataError, "negative sampling: every count is 0");
  for (double& s : scaled) s *= static_cast<double>(V) / sum;
  threshold_.assign(V, 0);
  alias_.assign(V, 0);
  size_ = V;
  std::vector<size_t> small, large;
  for (size_t i = 0; i < V; ++i) (scaled[i] < 1.0 ? small : large).push_back(i);
  auto set = [&](size_t i, double p, size_t alias) {
    const double t = std::ldexp(p, 32);
    threshold_[i] = t >= 4294967295.0 ? 0xFFFFFFFFu : static_cast<uint32_t>(std::llround(t));
    alias_[i] = static_cast<int32_t>(alias);
  };
  while (!small.empty() && !large.empty()) {
    const size_t s = small.back(), l = large.back();
    small.pop_back();
    set(s, scaled[s], l);
    scaled[l] -= 1.0 - scaled[s];
    if (scaled[l] < 1.0) {
      large.pop_back();
      small.push_back(l);
    }
  }
  // What is left has p = 1 up to rounding: always keep the slot. (0xFFFFFFFF drops one
  // value in 2^32 to the alias, which is the slot itself.)
  for (size_t i : large) set(i, 1.0, i);
  for (size_t i : small) set(i, 1.0, i);
}

std::vector<double> NoiseTable::implied_probabilities() const {
  std::vector<double> p(size_, 0.0);
  const double slot = 1.0 / static_cast<double>(size_);
  for (size_t i = 0; i < size_; ++i) {
    const double keep = static_cast<double>(threshold_[i]) * 0x1.0p-32;
    p[i] += slot * keep;
    p[static_cast<size_t>(alias_[i])] += slot * (1.0 - keep);
  }
  return p;
}

}  // namespace loom
