#pragma once
// A small but complete checkpoint for the io tests: parameters with DESIGN.md names (dots
// included), Adam slots, per-rank state and a vocabulary, all with exact, rank-independent
// values (state rows are rank-dependent on purpose: row r = r * 1000 + i).
#include <cmath>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "core/param_store.h"
#include "io/checkpoint.h"

namespace loom::test {

struct CheckpointFixture {
  ParamStore params;
  std::vector<std::vector<float>> slot_data;   // m, v for every parameter
  std::vector<std::string> tokens{"the", "of", "naïve", "日本語", "a b", ""};
  std::vector<int64_t> counts{1000, 500, 7, 3, 2, 1};
  SaveRequest req;

  // extra_rows: first dimension of "W" (shape mismatch tests use another value).
  explicit CheckpointFixture(int rank, int64_t step = 7, int64_t w_rows = 5, bool with_extra = false) {
    params.declare("W", {w_rows, 3});
    params.declare("h.0.attn.c_attn.weight", {12, 4});
    params.declare("b", {7});
    if (with_extra) params.declare("extra", {2});
    params.finalize();
    for (int i = 0; i < params.size(); ++i) {
      float* p = params.value(i).f32();
      for (int64_t k = 0; k < params.value(i).numel(); ++k)
        p[k] = static_cast<float>(std::sin(0.37 * static_cast<double>(k) + i) * 3.0);
    }
    for (int i = 0; i < params.size(); ++i) {
      for (int s = 0; s < 2; ++s) {
        auto& v = slot_data.emplace_back(static_cast<size_t>(params.value(i).numel()));
        for (size_t k = 0; k < v.size(); ++k) v[k] = static_cast<float>(k) * 0.5f + static_cast<float>(s) + 0.125f;
      }
    }
    size_t next = 0;
    for (int i = 0; i < params.size(); ++i) {
      for (const char* slot : {"m", "v"}) {
        Tensor t(slot_data[next++].data(), params.value(i).shape(), DType::kF32);
        req.slots.push_back({params.entry(i).name, slot, t});
      }
    }
    std::vector<uint64_t> rng{static_cast<uint64_t>(rank) * 1000 + 1, static_cast<uint64_t>(rank) * 1000 + 2,
                              ~uint64_t{0} - static_cast<uint64_t>(rank)};
    req.state.push_back({"rng", rng});
    req.state.push_back({"data", {static_cast<uint64_t>(rank) * 1000 + 42, 9}});
    req.meta.model_kind = "glove";
    req.meta.step = step;
    req.meta.epoch = 2;
    req.meta.tokens_seen = 123456789012;
    req.meta.config_toml = "[model]\nkind = \"glove\"\ndim = 3\n";
    req.params = &params;
    req.vocab = VocabView{&tokens, &counts};
  }
};

inline bool same_bits(const void* a, const void* b, size_t bytes) { return std::memcmp(a, b, bytes) == 0; }

}  // namespace loom::test
