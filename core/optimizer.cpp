#include "core/optimizer.h"

#include <cmath>

namespace loom {

Tensor Optimizer::slot_view(int param_index, std::string_view slot) const {
  for (size_t s = 0; s < slot_names_.size(); ++s) {
    if (slot_names_[s] != slot) continue;
    const ParamStore::Entry& e = params_.entry(param_index);
    return slots_[s].as(DType::kF32).slice(e.offset, e.numel).view(e.shape);
  }
  throw Error("optimizer " + std::string(name()) + " has no slot '" + std::string(slot) + "'");
}

void Optimizer::add_slot(std::string name, float init) {
  LOOM_ASSERT(params_.finalized(), "optimizer built before ParamStore::finalize");
  LOOM_ASSERT(params_.device().is_cpu(), "CPU optimizer on device parameters");
  slot_names_.push_back(std::move(name));
  slots_.emplace_back(static_cast<size_t>(params_.total_elements()) * sizeof(float));
  float* p = static_cast<float*>(slots_.back().data());
  for (int64_t i = 0; i < params_.total_elements(); ++i) p[i] = init;
}

void Sgd::step(ParamStore& params, double lr) {
  float* w = params.values().f32();
  const float* g = params.grads().f32();
  const float rate = static_cast<float>(lr);
  const int64_t n = params.total_elements();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) w[i] -= rate * g[i];
  ++steps_;
}

AdaGrad::AdaGrad(const ParamStore& params, float initial_accumulator) : Optimizer(params) {
  add_slot("gradsq", initial_accumulator);
}

void AdaGrad::step(ParamStore& params, double lr) {
  float* w = params.values().f32();
  const float* g = params.grads().f32();
  float* gsq = slot_data(0);
  const float rate = static_cast<float>(lr);
  const int64_t n = params.total_elements();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    gsq[i] += g[i] * g[i];
    w[i] -= rate * g[i] / std::sqrt(gsq[i]);
  }
  ++steps_;
}

AdamW::AdamW(const ParamStore& params, AdamWOptions options) : Optimizer(params), options_(options) {
  add_slot("m", 0.0f);
  add_slot("v", 0.0f);
}

void AdamW::step(ParamStore& params, double lr) {
  ++steps_;
  float* w = params.values().f32();
  const float* g = params.grads().f32();
  float* m = slot_data(0);
  float* v = slot_data(1);
  const auto b1 = static_cast<float>(options_.beta1), b2 = static_cast<float>(options_.beta2);
  const auto c1 = static_cast<float>(1.0 - std::pow(options_.beta1, double(steps_)));
  const auto c2 = static_cast<float>(1.0 - std::pow(options_.beta2, double(steps_)));
  const auto rate = static_cast<float>(lr), eps = static_cast<float>(options_.eps);
  const auto decay = static_cast<float>(lr * options_.weight_decay);
  const int64_t n = params.total_elements();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    m[i] = b1 * m[i] + (1.0f - b1) * g[i];
    v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
    float mhat = m[i] / c1, vhat = v[i] / c2;
    w[i] -= rate * (mhat / (std::sqrt(vhat) + eps)) + decay * w[i];
  }
}

}  // namespace loom
