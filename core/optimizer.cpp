#include "core/optimizer.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>

namespace loom {
namespace {

// The host copy of a device table section: `count` values of T at `offset` bytes, padded to 8.
template <typename T>
size_t append(std::vector<uint8_t>& bytes, const std::vector<T>& values) {
  const size_t offset = bytes.size();
  bytes.resize(offset + (values.size() * sizeof(T) + 7) / 8 * 8, 0);
  if (!values.empty()) std::memcpy(bytes.data() + offset, values.data(), values.size() * sizeof(T));
  return offset;
}

// One Adam-family step's scalars, as the CPU step computes them (Note [Same arithmetic as
// the CPU] in core/optimizer_cuda.h).
cuda::AdamScalars adam_scalars(const AdamWOptions& o, int64_t step, double lr, double decay) {
  cuda::AdamScalars s;
  s.b1 = static_cast<float>(o.beta1);
  s.b2 = static_cast<float>(o.beta2);
  s.c1 = static_cast<float>(1.0 - std::pow(o.beta1, double(step)));
  s.c2 = static_cast<float>(1.0 - std::pow(o.beta2, double(step)));
  s.eps = static_cast<float>(o.eps);
  s.rate = static_cast<float>(lr);
  s.decay = static_cast<float>(decay);
  return s;
}

// clip_grad_norm's device scratch (kNormBlocks partial sums and the norm), one per GPU,
// allocated at the first call on that GPU and kept for the process.
double* norm_scratch(int device) {
  static std::mutex mutex;
  static std::vector<Buffer> scratch;   // (devices)
  std::lock_guard<std::mutex> lock(mutex);
  if (scratch.size() <= size_t(device)) scratch.resize(size_t(device) + 1);
  Buffer& b = scratch[size_t(device)];
  if (b.data() == nullptr) b = Buffer((cuda::kNormBlocks + 1) * sizeof(double), Device::cuda(device));
  return static_cast<double*>(b.data());
}

void require_f32(const ParamStore& params, const char* who) {
  LOOM_CHECK(params.dtype() == DType::kF32, Error,
             std::string(who) + " on " + params.device().str() + " needs float32 parameters, got " +
                 dtype_name(params.dtype()));
}

}  // namespace

Tensor Optimizer::slot_view(int param_index, std::string_view slot) const {
  for (size_t s = 0; s < slot_names_.size(); ++s) {
    if (slot_names_[s] != slot) continue;
    const ParamStore::Entry& e = params_.entry(param_index);
    return Tensor(slot_data(s) + e.offset, e.shape, DType::kF32, params_.device());
  }
  throw Error("optimizer " + std::string(name()) + " has no slot '" + std::string(slot) + "'");
}

void Optimizer::init_slots(std::vector<std::string> names, float init) {
  LOOM_ASSERT(params_.finalized(), "optimizer built before ParamStore::finalize");
  LOOM_ASSERT(slot_names_.empty(), "optimizer slots allocated twice");
  slot_names_ = std::move(names);
  const int64_t n = int64_t(slot_names_.size()) * params_.total_elements();
  slots_ = Buffer(static_cast<size_t>(n) * sizeof(float), params_.device());   // zeroed
  if (init == 0.0f || n == 0) return;
  if (params_.device().is_cpu()) {
    float* p = static_cast<float*>(slots_.data());
    for (int64_t i = 0; i < n; ++i) p[i] = init;
  } else {   // setup only: one host staging copy
    std::vector<float> host(static_cast<size_t>(n), init);
    copy_bytes(slots_.data(), params_.device(), host.data(), Device::cpu(), slots_.size());
  }
}

void Optimizer::require_cpu() const {
  LOOM_CHECK(params_.device().is_cpu(), Error,
             "optimizer '" + std::string(name()) + "' has no GPU implementation, and the parameters are on " +
                 params_.device().str() + "; use adamw or lamb for GPU models, or keep this model on the CPU");
}

void Optimizer::build_device_chunks(const std::vector<uint8_t>& decay) {
  const std::vector<ParamStore::Entry>& entries = params_.entries();
  std::vector<int32_t> chunk_param;
  std::vector<int64_t> chunk_begin, chunk_end, first_chunk{0};
  std::vector<uint8_t> decays;
  for (size_t p = 0; p < entries.size(); ++p) {
    const int64_t begin = entries[p].offset, end = begin + entries[p].numel;
    for (int64_t c = begin; c < end; c += cuda::kOptimizerChunk) {
      chunk_param.push_back(int32_t(p));
      chunk_begin.push_back(c);
      chunk_end.push_back(std::min(c + cuda::kOptimizerChunk, end));
    }
    first_chunk.push_back(int64_t(chunk_param.size()));
    decays.push_back(decay.empty() || decay[p] != 0 ? 1 : 0);
  }
  std::vector<uint8_t> bytes;
  const size_t o_param = append(bytes, chunk_param), o_begin = append(bytes, chunk_begin),
               o_end = append(bytes, chunk_end), o_first = append(bytes, first_chunk),
               o_decay = append(bytes, decays);
  device_table_ = Buffer(std::max<size_t>(bytes.size(), 8), params_.device());
  copy_bytes(device_table_.data(), params_.device(), bytes.data(), Device::cpu(), bytes.size());
  auto* base = static_cast<uint8_t*>(device_table_.data());
  chunks_.device = params_.device().index;
  chunks_.chunks = int64_t(chunk_param.size());
  chunks_.params = int(entries.size());
  chunks_.chunk_param = reinterpret_cast<const int32_t*>(base + o_param);
  chunks_.chunk_begin = reinterpret_cast<const int64_t*>(base + o_begin);
  chunks_.chunk_end = reinterpret_cast<const int64_t*>(base + o_end);
  chunks_.param_first_chunk = reinterpret_cast<const int64_t*>(base + o_first);
  chunks_.param_decays = base + o_decay;
}

void Sgd::step(ParamStore& params, double lr) {
  require_cpu();
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
  require_cpu();
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
  if (params.device().is_cuda()) {
    require_f32(params, "AdamW");
    build_device_chunks(options_.decay);
  }
}

void AdamW::step(ParamStore& params, double lr) {
  ++steps_;
  if (params.device().is_cuda()) {
    cuda::adamw_step(chunks_, adam_scalars(options_, steps_, lr, lr * options_.weight_decay),
                     params.values().f32(), params.grads().f32(), slot_data(0), slot_data(1));
    return;
  }
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
static_assert(kLambChunk == cuda::kOptimizerChunk, "the GPU chunk table follows Lamb's chunks");
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
  if (params.device().is_cuda()) {
    require_f32(params, "LAMB");
    build_device_chunks(options_.decay);
    const size_t doubles = 2 * size_t(chunk_begin_.back()) + size_t(params.size());
    device_sums_ = Buffer(std::max<size_t>(doubles, 1) * sizeof(double), params.device());
    std::vector<double> ones(size_t(params.size()), 1.0);   // trust before the first step
    if (!ones.empty())
      copy_bytes(static_cast<double*>(device_sums_.data()) + 2 * chunk_begin_.back(), params.device(),
                 ones.data(), Device::cpu(), ones.size() * sizeof(double));
  }
}

const std::vector<double>& Lamb::trust_ratios() const {
  if (params_.device().is_cuda() && !trust_.empty())
    copy_bytes(trust_.data(), Device::cpu(), static_cast<const double*>(device_sums_.data()) + 2 * chunk_begin_.back(),
               params_.device(), trust_.size() * sizeof(double));
  return trust_;
}

void Lamb::step(ParamStore& params, double lr) {
  ++steps_;
  if (params.device().is_cuda()) {
    auto* sums = static_cast<double*>(device_sums_.data());
    cuda::lamb_step(chunks_, adam_scalars(options_, steps_, lr, options_.weight_decay), lr,
                    params.values().f32(), params.grads().f32(), slot_data(0), slot_data(1), sums,
                    sums + 2 * chunk_begin_.back());
    return;
  }
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
  if (params.device().is_cuda())
    return cuda::grad_norm_clip(params.device().index, g, n, max_norm, norm_scratch(params.device().index));
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

void divide_in_place(Tensor x, double divisor) {
  const float d = float(divisor);
  float* g = x.f32();   // (n)
  const int64_t n = x.numel();
  if (x.device().is_cuda()) {
    cuda::divide(x.device().index, g, n, d);
    return;
  }
  for (int64_t i = 0; i < n; ++i) g[i] /= d;
}

}  // namespace loom
