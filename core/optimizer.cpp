#include "core/optimizer.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>

namespace loom {

Tensor Optimizer::slot_view(int param_index, std::string_view slot) const {
  for (size_t s = 0; s < slot_names_.size(); ++s) {
    if (slot_names_[s] != slot) continue;
    const ParamStore::Entry& e = params_.entry(param_index);
    return Tensor(slot_data(s) + e.offset, e.shape, DType::kF32);
  }
  throw Error("optimizer " + std::string(name()) + " has no slot '" + std::string(slot) + "'");
}

void Optimizer::init_slots(std::vector<std::string> names, float init) {
  LOOM_ASSERT(params_.finalized(), "optimizer built before ParamStore::finalize");
  LOOM_ASSERT(params_.device().is_cpu(), "CPU optimizer on device parameters");
  LOOM_ASSERT(slot_names_.empty(), "optimizer slots allocated twice");
  slot_names_ = std::move(names);
  const int64_t n = int64_t(slot_names_.size()) * params_.total_elements();
  slots_ = Buffer(static_cast<size_t>(n) * sizeof(float));
  float* p = static_cast<float*>(slots_.data());
  if (init != 0.0f)
    for (int64_t i = 0; i < n; ++i) p[i] = init;
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
  init_slots({"gradsq"}, initial_accumulator);
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
  init_slots({"m", "v"}, 0.0f);
  LOOM_CHECK(options_.decay.empty() || options_.decay.size() == size_t(params.size()), Error,
             "AdamW: the decay mask has " + std::to_string(options_.decay.size()) +
                 " entries for " + std::to_string(params.size()) + " parameters");
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
  // One run of elements per parameter (its own decay); padding between them stays zero.
  const std::vector<ParamStore::Entry>& entries = params.entries();
#pragma omp parallel
  for (size_t p = 0; p < entries.size(); ++p) {
    const int64_t begin = entries[p].offset, end = begin + entries[p].numel;
    const float wd = options_.decay.empty() || options_.decay[p] != 0 ? decay : 0.0f;
#pragma omp for simd schedule(static) nowait
    for (int64_t i = begin; i < end; ++i) {
      m[i] = b1 * m[i] + (1.0f - b1) * g[i];
      v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
      float mhat = m[i] / c1, vhat = v[i] / c2;
      w[i] -= rate * (mhat / (std::sqrt(vhat) + eps)) + wd * w[i];
    }
  }
}

namespace {
constexpr int64_t kLambChunk = 4096;
}

Lamb::Lamb(const ParamStore& params, AdamWOptions options) : Optimizer(params), options_(options) {
  init_slots({"m", "v"}, 0.0f);
  LOOM_CHECK(options_.decay.empty() || options_.decay.size() == size_t(params.size()), Error,
             "LAMB: the decay mask has " + std::to_string(options_.decay.size()) +
                 " entries for " + std::to_string(params.size()) + " parameters");
  chunk_begin_.push_back(0);
  for (const ParamStore::Entry& e : params.entries())
    chunk_begin_.push_back(chunk_begin_.back() + (e.numel + kLambChunk - 1) / kLambChunk);
  chunk_w_.assign(size_t(chunk_begin_.back()), 0.0);
  chunk_u_.assign(size_t(chunk_begin_.back()), 0.0);
  trust_.assign(size_t(params.size()), 1.0);
}

void Lamb::step(ParamStore& params, double lr) {
  ++steps_;
  float* w = params.values().f32();
  const float* g = params.grads().f32();
  float* m = slot_data(0);
  float* v = slot_data(1);
  const auto b1 = static_cast<float>(options_.beta1), b2 = static_cast<float>(options_.beta2);
  const auto c1 = static_cast<float>(1.0 - std::pow(options_.beta1, double(steps_)));
  const auto c2 = static_cast<float>(1.0 - std::pow(options_.beta2, double(steps_)));
  const auto eps = static_cast<float>(options_.eps);
  const std::vector<ParamStore::Entry>& entries = params.entries();
  auto decays = [&](size_t p) { return options_.decay.empty() || options_.decay[p] != 0; };
  const int64_t chunks = chunk_begin_.back();
  // Pass 1: the moments, and per chunk Σ w² and Σ u² (u = m̂ / (√v̂ + ε) + λ w).
  size_t p = 0;
#pragma omp parallel for schedule(static) firstprivate(p)
  for (int64_t c = 0; c < chunks; ++c) {
    while (chunk_begin_[p + 1] <= c) ++p;
    const float wd = decays(p) ? static_cast<float>(options_.weight_decay) : 0.0f;
    const int64_t begin = entries[p].offset + (c - chunk_begin_[p]) * kLambChunk;
    const int64_t end = std::min(begin + kLambChunk, entries[p].offset + entries[p].numel);
    double sw = 0.0, su = 0.0;
    for (int64_t i = begin; i < end; ++i) {
      m[i] = b1 * m[i] + (1.0f - b1) * g[i];
      v[i] = b2 * v[i] + (1.0f - b2) * g[i] * g[i];
      const float u = (m[i] / c1) / (std::sqrt(v[i] / c2) + eps) + wd * w[i];
      sw += double(w[i]) * w[i];
      su += double(u) * u;
    }
    chunk_w_[size_t(c)] = sw;
    chunk_u_[size_t(c)] = su;
  }
  for (size_t q = 0; q < entries.size(); ++q) {
    double sw = 0.0, su = 0.0;
    for (int64_t c = chunk_begin_[q]; c < chunk_begin_[q + 1]; ++c) sw += chunk_w_[size_t(c)], su += chunk_u_[size_t(c)];
    trust_[q] = decays(q) && sw > 0.0 && su > 0.0 ? std::sqrt(sw) / std::sqrt(su) : 1.0;
  }
  // Pass 2: w −= lr · trust · u (u recomputed from the new moments: cheaper than storing it).
  p = 0;
#pragma omp parallel for schedule(static) firstprivate(p)
  for (int64_t c = 0; c < chunks; ++c) {
    while (chunk_begin_[p + 1] <= c) ++p;
    const float wd = decays(p) ? static_cast<float>(options_.weight_decay) : 0.0f;
    const auto rate = static_cast<float>(lr * trust_[p]);
    const int64_t begin = entries[p].offset + (c - chunk_begin_[p]) * kLambChunk;
    const int64_t end = std::min(begin + kLambChunk, entries[p].offset + entries[p].numel);
    for (int64_t i = begin; i < end; ++i) {
      const float u = (m[i] / c1) / (std::sqrt(v[i] / c2) + eps) + wd * w[i];
      w[i] -= rate * u;
    }
  }
}

double clip_grad_norm(ParamStore& params, double max_norm) {
  float* g = params.grads().f32();
  const int64_t n = params.total_elements();
  constexpr int64_t kBlocks = 256;
  double partial[kBlocks] = {};
#pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < kBlocks; ++b) {
    const int64_t lo = n * b / kBlocks, hi = n * (b + 1) / kBlocks;
    double sum = 0.0;
    for (int64_t i = lo; i < hi; ++i) sum += double(g[i]) * double(g[i]);
    partial[b] = sum;
  }
  double sum = 0.0;
  for (double v : partial) sum += v;
  const double norm = std::sqrt(sum);
  if (max_norm > 0.0 && norm > max_norm) {
    const auto factor = static_cast<float>(max_norm / (norm + 1e-6));
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) g[i] *= factor;
  }
  return norm;
}

}  // namespace loom
