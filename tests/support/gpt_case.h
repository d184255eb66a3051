#pragma once
// Shared by the GPT tests that compare loom with Python references (tests/python/): a tiny
// GPT with every parameter drawn at random, batches, and the CASE.h5 file the reference
// scripts read (its layout: tests/python/gpt_reference.py). Header-only; the tests link
// loom_models and loom_io.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/rng.h"
#include "io/h5.h"
#include "models/gpt/gpt_net.h"
#include "tests/support/test_support.h"

namespace loom::test {

inline GptShape tiny_shape(bool bias) {
  GptShape s;
  s.n_layer = 2;
  s.n_head = 2;
  s.d_model = 8;
  s.n_positions = 7;
  s.vocab_size = 11;
  s.bias = bias;
  return s;
}

// Every parameter drawn at random (LayerNorm weights around 1, biases nonzero), so that no
// gradient is trivially zero and no symmetry hides a wrong index.
inline void randomize(GptNet& net, uint64_t seed) {
  Rng rng(seed, 0, RngPurpose::kTest);
  ParamStore& p = net.params();
  for (int i = 0; i < p.size(); ++i) {
    Tensor t = p.value(i);
    const bool ln_weight = p.entry(i).name.find("ln_") != std::string::npos &&
                           p.entry(i).name.find(".weight") != std::string::npos;
    for (int64_t k = 0; k < t.numel(); ++k) {
      const double v = (ln_weight ? 1.0 : 0.0) + 0.3 * rng.normal();
      if (t.dtype() == DType::kF64) {
        t.f64()[k] = double(float(v));   // float-representable: the f32 net gets the same
      } else {
        t.f32()[k] = float(v);
      }
    }
  }
}

struct Batch {
  std::vector<int32_t> tokens, targets;
  int64_t B, T;
};

inline Batch make_batch(int64_t B, int64_t T, int V, uint64_t seed, bool with_ignored) {
  Rng rng(seed, 1, RngPurpose::kTest);
  Batch b{{}, {}, B, T};
  for (int64_t i = 0; i < B * T; ++i) {
    b.tokens.push_back(int32_t(rng.below(uint64_t(V))));
    b.targets.push_back(int32_t(rng.below(uint64_t(V))));
  }
  if (with_ignored) {
    b.targets[1] = -1;
    b.targets[size_t(B * T - 1)] = -1;
  }
  return b;
}

inline double loss_of(GptNet& net, Batch& b) {
  return net.forward(Tensor(b.tokens.data(), {b.B, b.T}, DType::kI32),
                     Tensor(b.targets.data(), {b.B, b.T}, DType::kI32));
}

inline double value_at(const Tensor& t, int64_t k) {
  return t.dtype() == DType::kF64 ? t.f64()[k] : double(t.f32()[k]);
}

// The Python reference environment: "" when usable, else why not (the caller skips, or
// fails under CI).
inline std::string reference_unavailable() {
  const char* py = std::getenv("LOOM_PYTHON");
  const char* tool = std::getenv("LOOM_GPT_REFERENCE");
  if (!py || !tool) return "LOOM_PYTHON / LOOM_GPT_REFERENCE are not set (run through ctest)";
  if (::access(py, X_OK) != 0) return std::string(py) + " is missing: run scripts/setup.sh";
  test::RunResult r = test::run({py, "-c", "import torch, transformers, h5py"}, std::chrono::seconds(300));
  if (r.status != 0) return "the .venv cannot import torch, transformers and h5py: " + r.err;
  return "";
}

inline void write_case(const std::string& path, GptNet& net, const Batch& b) {
  h5::File f = h5::File::create(path);
  const GptShape& s = net.shape();
  f.set_attr("n_layer", int64_t(s.n_layer));
  f.set_attr("n_head", int64_t(s.n_head));
  f.set_attr("d_model", int64_t(s.d_model));
  f.set_attr("n_positions", int64_t(s.n_positions));
  f.set_attr("vocab_size", int64_t(s.vocab_size));
  f.set_attr("bias", int64_t(s.bias ? 1 : 0));
  f.set_attr("ln_eps", std::string("1e-5"));
  h5::Group model = f.create_group("model");
  const ParamStore& p = net.params();
  for (int i = 0; i < p.size(); ++i) {
    Tensor t = p.value(i);
    std::vector<int64_t> dims;
    for (int d = 0; d < t.shape().rank(); ++d) dims.push_back(t.shape()[d]);
    std::vector<float> v(size_t(t.numel()));
    for (int64_t k = 0; k < t.numel(); ++k) v[size_t(k)] = float(value_at(t, k));
    h5::Dataset ds = model.create_dataset(p.entry(i).name, h5::ElemType::kF32, dims);
    ds.write_rows(0, dims[0], v.data());
  }
  h5::Group batch = f.create_group("batch");
  std::vector<int64_t> tok(b.tokens.begin(), b.tokens.end()), tgt(b.targets.begin(), b.targets.end());
  batch.create_dataset("inputs", h5::ElemType::kI64, {b.B, b.T}).write_rows(0, b.B, tok.data());
  batch.create_dataset("targets", h5::ElemType::kI64, {b.B, b.T}).write_rows(0, b.B, tgt.data());
  f.close();
}

// Skips (or, under CI, fails) the current test when the reference environment is missing.
#define LOOM_REQUIRE_PYTHON_REFERENCE()                                                        \
  do {                                                                                         \
    const std::string why_ = ::loom::test::reference_unavailable();                            \
    if (!why_.empty()) LOOM_SKIP_OR_FAIL("PyTorch / transformers reference unavailable: " + why_); \
  } while (0)

}  // namespace loom::test
