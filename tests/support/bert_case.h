#pragma once
// Shared by the BERT tests that compare loom with tests/python/bert_reference.py: a tiny
// BERT with every parameter drawn at random, micro-batches with padding, ignored MLM slots,
// an empty slot and an ignored NSP label, and the CASE.h5 file the reference reads (its
// layout: the docstring of tests/python/bert_reference.py). Header-only; the tests link
// loom_models (and through it loom_io).
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <string>
#include <vector>

#include "core/rng.h"
#include "io/h5.h"
#include "models/bert/bert_net.h"
#include "tests/support/test_support.h"

namespace loom::test {

inline BertShape tiny_bert_shape() {
  BertShape s;
  s.vocab_size = 13;
  s.hidden = 8;
  s.n_layer = 2;
  s.n_head = 2;
  s.intermediate = 12;
  s.max_position = 10;
  s.type_vocab = 2;
  s.pad_id = 0;
  return s;
}

inline double bert_value_at(const Tensor& t, int64_t k) {
  return t.dtype() == DType::kF64 ? t.f64()[k] : double(t.f32()[k]);
}

// Every parameter at random (LayerNorm weights around 1, biases nonzero, the pad row too),
// float-representable so that an f32 net gets the same values.
inline void randomize(BertNet& net, uint64_t seed) {
  Rng rng(seed, 0, RngPurpose::kTest);
  ParamStore& p = net.params();
  for (int i = 0; i < p.size(); ++i) {
    Tensor t = p.value(i);
    const bool ln_weight = p.entry(i).name.find("LayerNorm.weight") != std::string::npos;
    for (int64_t k = 0; k < t.numel(); ++k) {
      const double v = (ln_weight ? 1.0 : 0.0) + 0.3 * rng.normal();
      if (t.dtype() == DType::kF64) {
        t.f64()[k] = double(float(v));
      } else {
        t.f32()[k] = float(v);
      }
    }
  }
}

struct BertCase {
  int64_t B, T, P;
  std::vector<int32_t> tokens, segments, key_mask, positions, labels, nsp;   // row-major

  BertInputs inputs() {
    BertInputs in;
    in.tokens = Tensor(tokens.data(), {B, T}, DType::kI32);
    in.segments = Tensor(segments.data(), {B, T}, DType::kI32);
    in.key_mask = Tensor(key_mask.data(), {B, T}, DType::kI32);
    in.mlm_positions = Tensor(positions.data(), {B, P}, DType::kI32);
    in.mlm_labels = Tensor(labels.data(), {B, P}, DType::kI32);
    in.nsp_labels = Tensor(nsp.data(), {B}, DType::kI32);
    return in;
  }
  int64_t mlm_counted() const {
    int64_t n = 0;
    for (int32_t y : labels) n += y != -1;
    return n;
  }
  int64_t nsp_counted() const {
    int64_t n = 0;
    for (int32_t y : nsp) n += y != -1;
    return n;
  }
};

// B sequences of T tokens; the last one padded (length T − 2, pad_id tokens), a pad token
// among the first sequence's real ones. P slots per sequence at distinct positions
// (all_positions: P = T, slot p at position p), about a quarter unlabelled, the last
// sequence's last slot empty (−1) unless all_positions; the last NSP label ignored.
inline BertCase make_bert_case(int64_t B, int64_t T, int64_t P, const BertShape& s, uint64_t seed,
                               bool all_positions) {
  Rng rng(seed, 1, RngPurpose::kTest);
  BertCase c{B, T, all_positions ? T : P, {}, {}, {}, {}, {}, {}};
  P = c.P;
  std::vector<int32_t> lengths(static_cast<size_t>(B), static_cast<int32_t>(T));
  lengths[size_t(B - 1)] = int32_t(T - 2);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      const bool real = t < lengths[size_t(b)];
      c.key_mask.push_back(real ? 1 : 0);
      int32_t tok = int32_t(rng.below(uint64_t(s.vocab_size)));
      if (!real || (b == 0 && t == 1)) tok = s.pad_id;
      c.tokens.push_back(tok);
      c.segments.push_back(int32_t(rng.below(uint64_t(s.type_vocab))));
    }
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int32_t> order(static_cast<size_t>(T));
    for (int64_t t = 0; t < T; ++t) order[size_t(t)] = int32_t(t);
    if (!all_positions)
      for (int64_t t = T - 1; t > 0; --t)
        std::swap(order[size_t(t)], order[rng.below(uint64_t(t + 1))]);
    for (int64_t p = 0; p < P; ++p) {
      c.positions.push_back(order[size_t(p)]);
      c.labels.push_back(rng.uniform() < 0.25 ? -1 : int32_t(rng.below(uint64_t(s.vocab_size))));
    }
  }
  c.labels[0] = 3;   // at least one counted slot
  if (!all_positions) {
    c.positions.back() = -1;
    c.labels.back() = -1;
  }
  for (int64_t b = 0; b < B; ++b) c.nsp.push_back(int32_t(rng.below(2)));
  c.nsp.back() = -1;
  return c;
}

// The Python reference environment: "" when usable, else why not.
inline std::string bert_reference_unavailable() {
  const char* py = std::getenv("LOOM_PYTHON");
  const char* tool = std::getenv("LOOM_BERT_REFERENCE");
  if (!py || !tool) return "LOOM_PYTHON / LOOM_BERT_REFERENCE are not set (run through ctest)";
  if (::access(py, X_OK) != 0) return std::string(py) + " is missing: run scripts/setup.sh";
  test::RunResult r =
      test::run({py, "-c", "import torch, transformers, h5py"}, std::chrono::seconds(300));
  if (r.status != 0) return "the .venv cannot import torch, transformers and h5py: " + r.err;
  return "";
}

inline void write_bert_case(const std::string& path, const BertNet& net, const BertCase& c) {
  h5::File f = h5::File::create(path);
  const BertShape& s = net.shape();
  f.set_attr("vocab_size", int64_t(s.vocab_size));
  f.set_attr("hidden", int64_t(s.hidden));
  f.set_attr("n_layer", int64_t(s.n_layer));
  f.set_attr("n_head", int64_t(s.n_head));
  f.set_attr("intermediate", int64_t(s.intermediate));
  f.set_attr("max_position", int64_t(s.max_position));
  f.set_attr("type_vocab", int64_t(s.type_vocab));
  f.set_attr("pad_id", int64_t(s.pad_id));
  f.set_attr("ln_eps", std::string("1e-12"));
  h5::Group model = f.create_group("model");
  const ParamStore& p = net.params();
  for (int i = 0; i < p.size(); ++i) {
    Tensor t = p.value(i);
    std::vector<int64_t> dims;
    for (int d = 0; d < t.shape().rank(); ++d) dims.push_back(t.shape()[d]);
    std::vector<double> v(size_t(t.numel()));
    for (int64_t k = 0; k < t.numel(); ++k) v[size_t(k)] = bert_value_at(t, k);
    model.create_dataset(p.entry(i).name, h5::ElemType::kF64, dims)
        .write_rows(0, dims[0], v.data());
  }
  h5::Group batch = f.create_group("batch");
  auto put = [&](const char* name, const std::vector<int32_t>& v, std::vector<int64_t> dims) {
    std::vector<int64_t> w(v.begin(), v.end());
    batch.create_dataset(name, h5::ElemType::kI64, dims).write_rows(0, dims[0], w.data());
  };
  put("tokens", c.tokens, {c.B, c.T});
  put("segments", c.segments, {c.B, c.T});
  put("key_mask", c.key_mask, {c.B, c.T});
  put("mlm_positions", c.positions, {c.B, c.P});
  put("mlm_labels", c.labels, {c.B, c.P});
  put("nsp_labels", c.nsp, {c.B});
  f.close();
}

// Skips (or, under CI, fails) the current test when the reference environment is missing.
#define LOOM_REQUIRE_BERT_REFERENCE()                                                          \
  do {                                                                                         \
    const std::string why_ = ::loom::test::bert_reference_unavailable();                       \
    if (!why_.empty()) LOOM_SKIP_OR_FAIL("PyTorch / transformers reference unavailable: " + why_); \
  } while (0)

}  // namespace loom::test
