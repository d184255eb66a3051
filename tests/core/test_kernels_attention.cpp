// The attention kernels (core/kernels.h) on the CPU reference: forward (out and the
// saved probabilities) against a naive double loop, causal and/or key-padding masks, a
// query whose keys are all masked (zeros, no NaN), backward against central finite
// differences in double, T past the causal row block (Note [Causal blocks]), datt as
// scratch (NaN on entry does not leak), f32 against f64, and the refusals.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "core/kernels.h"
#include "tests/core/test_kernels_common.h"

namespace loom::test {
namespace {

struct Dims {
  int64_t B, T, C, H;
  int64_t D() const { return C / H; }
};

// out (B, T, C) and att (B, H, T, T) in double from qkv (B, T, 3C).
void naive_attention(std::vector<double>& out, std::vector<double>& att,
                     const std::vector<double>& qkv, const std::vector<int32_t>* mask,
                     const Dims& d, bool causal) {
  const int64_t T = d.T, C = d.C, D = d.D();
  for (int64_t b = 0; b < d.B; ++b)
    for (int64_t h = 0; h < d.H; ++h)
      for (int64_t t = 0; t < T; ++t) {
        double* p = &att[sz(((b * d.H + h) * T + t) * T)];
        auto seen = [&](int64_t s) {
          return (!causal || s <= t) && (mask == nullptr || (*mask)[sz(b * T + s)] != 0);
        };
        double m = -std::numeric_limits<double>::infinity(), sum = 0;
        for (int64_t s = 0; s < T; ++s) {
          p[s] = 0;
          if (!seen(s)) continue;
          for (int64_t j = 0; j < D; ++j)
            p[s] += qkv[sz((b * T + t) * 3 * C + h * D + j)] *
                    qkv[sz((b * T + s) * 3 * C + C + h * D + j)];
          p[s] /= std::sqrt(double(D));
          m = std::max(m, p[s]);
        }
        for (int64_t s = 0; s < T; ++s) {
          p[s] = seen(s) ? std::exp(p[s] - m) : 0.0;
          sum += p[s];
        }
        for (int64_t s = 0; s < T; ++s) p[s] = sum > 0 ? p[s] / sum : 0.0;
        for (int64_t j = 0; j < D; ++j) {
          double o = 0;
          for (int64_t s = 0; s < T; ++s)
            o += p[s] * qkv[sz((b * T + s) * 3 * C + 2 * C + h * D + j)];
          out[sz((b * T + t) * C + h * D + j)] = o;
        }
      }
}

struct Case {
  const char* name;
  Dims d;
  bool causal, masked;
};
// Small odd sizes; T = 67 passes the causal row block of 64.
const Case kCases[] = {
    {"causal", {2, 5, 6, 3}, true, false},
    {"padding", {2, 5, 6, 3}, false, true},
    {"causal_padding", {2, 5, 6, 3}, true, true},
    {"causal_long", {1, 67, 6, 3}, true, false},
    {"padding_long", {1, 67, 4, 2}, false, true},
};

// Batch 0 masks key 2; batch 1 masks key 0 (with a causal mask query 0 then sees no key)
// and the last key; the long cases mask keys 1, 64 and 65.
std::vector<int32_t> mask_of(const Dims& d) {
  std::vector<int32_t> m(sz(d.B * d.T), 1);
  if (d.T > 64) {
    for (int64_t s : {1, 64, 65}) m[sz(s)] = 0;
    return m;
  }
  m[2] = 0;
  m[sz(d.T)] = 0;
  m[sz(2 * d.T - 1)] = 0;
  return m;
}

class Attention : public ::testing::TestWithParam<Case> {};
INSTANTIATE_TEST_SUITE_P(Masks, Attention, ::testing::ValuesIn(kCases),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST_P(Attention, ForwardMatchesNaiveLoopInBothPrecisions) {
  const Case& c = GetParam();
  const Dims& d = c.d;
  std::vector<double> qkv = cast<double>(cast<float>(random_values<double>(d.B * d.T * 3 * d.C, 1)));
  for (double& x : qkv) x *= 2;   // peakier softmax
  std::vector<int32_t> mask = mask_of(d);
  const std::vector<int32_t>* mp = c.masked ? &mask : nullptr;
  std::vector<double> out_e(sz(d.B * d.T * d.C)), att_e(sz(d.B * d.H * d.T * d.T));
  naive_attention(out_e, att_e, qkv, mp, d, c.causal);
  std::vector<double> out(out_e.size(), 99.0), att(att_e.size(), 99.0);
  Tensor key_mask = c.masked ? view(mask, {d.B, d.T}) : Tensor{};
  attention_forward(view(out, {d.B, d.T, d.C}), view(att, {d.B, d.H, d.T, d.T}),
                    view(qkv, {d.B, d.T, 3 * d.C}), key_mask, int(d.H), c.causal);
  expect_close(out, out_e, 1e-13, 1e-12, "out f64");
  expect_close(att, att_e, 1e-13, 1e-12, "att f64");
  std::vector<float> qkv_f = cast<float>(qkv), out_f(out.size(), 99.0f), att_f(att.size(), 99.0f);
  attention_forward(view(out_f, {d.B, d.T, d.C}), view(att_f, {d.B, d.H, d.T, d.T}),
                    view(qkv_f, {d.B, d.T, 3 * d.C}), key_mask, int(d.H), c.causal);
  expect_close(out_f, out_e, 1e-5, 1e-5, "out f32");
  expect_close(att_f, att_e, 1e-6, 1e-5, "att f32");
  if (c.masked && c.causal && d.B > 1) {   // batch 1, query 0: its only key is masked
    for (int64_t h = 0; h < d.H; ++h) {
      for (int64_t j = 0; j < d.D(); ++j)
        ASSERT_EQ(out_f[sz((1 * d.T + 0) * d.C + h * d.D() + j)], 0.0f) << "head " << h;
    }
  }
}

TEST_P(Attention, BackwardMatchesFiniteDifferencesInDouble) {
  const Case& c = GetParam();
  const Dims& d = c.d;
  std::vector<double> qkv = random_values<double>(d.B * d.T * 3 * d.C, 11);
  std::vector<double> r = random_values<double>(d.B * d.T * d.C, 12);
  std::vector<int32_t> mask = mask_of(d);
  Tensor key_mask = c.masked ? view(mask, {d.B, d.T}) : Tensor{};
  std::vector<double> out(sz(d.B * d.T * d.C)), att(sz(d.B * d.H * d.T * d.T));
  auto forward = [&] {
    attention_forward(view(out, {d.B, d.T, d.C}), view(att, {d.B, d.H, d.T, d.T}),
                      view(qkv, {d.B, d.T, 3 * d.C}), key_mask, int(d.H), c.causal);
  };
  auto loss = [&] {
    forward();
    return dot(out, r);
  };
  forward();
  std::vector<double> dqkv(qkv.size(), 99.0);
  std::vector<double> datt(att.size(), std::numeric_limits<double>::quiet_NaN());
  attention_backward(view(dqkv, {d.B, d.T, 3 * d.C}), view(datt, {d.B, d.H, d.T, d.T}),
                     view(r, {d.B, d.T, d.C}), view(qkv, {d.B, d.T, 3 * d.C}),
                     view(att, {d.B, d.H, d.T, d.T}), int(d.H), c.causal);
  expect_close(dqkv, numeric_grad(qkv, loss), 1e-8, 1e-6, "dqkv");
  // f32 agrees with f64 on the same (float-representable) inputs.
  std::vector<float> qkv_f = cast<float>(qkv), r_f = cast<float>(r), out_f(out.size()),
                     att_f(att.size()), dqkv_f(qkv.size()), datt_f(att.size());
  qkv = cast<double>(qkv_f);
  r = cast<double>(r_f);
  forward();
  attention_backward(view(dqkv, {d.B, d.T, 3 * d.C}), view(datt, {d.B, d.H, d.T, d.T}),
                     view(r, {d.B, d.T, d.C}), view(qkv, {d.B, d.T, 3 * d.C}),
                     view(att, {d.B, d.H, d.T, d.T}), int(d.H), c.causal);
  attention_forward(view(out_f, {d.B, d.T, d.C}), view(att_f, {d.B, d.H, d.T, d.T}),
                    view(qkv_f, {d.B, d.T, 3 * d.C}), key_mask, int(d.H), c.causal);
  attention_backward(view(dqkv_f, {d.B, d.T, 3 * d.C}), view(datt_f, {d.B, d.H, d.T, d.T}),
                     view(r_f, {d.B, d.T, d.C}), view(qkv_f, {d.B, d.T, 3 * d.C}),
                     view(att_f, {d.B, d.H, d.T, d.T}), int(d.H), c.causal);
  expect_close(dqkv_f, dqkv, 1e-5, 1e-4, "dqkv f32");
}

TEST(AttentionDispatch, BadArgumentsAreRefused) {
  const Dims d{2, 5, 6, 3};
  std::vector<float> qkv(sz(d.B * d.T * 3 * d.C)), out(sz(d.B * d.T * d.C)),
      att(sz(d.B * d.H * d.T * d.T));
  std::vector<int32_t> mask(sz(d.B * d.T), 1);
  std::string m = error_of([&] {
    attention_forward(view(out, {d.B, d.T, d.C}), view(att, {d.B, d.H, d.T, d.T}),
                      view(qkv, {d.B, d.T, 3 * d.C}), Tensor{}, 4, true);
  });
  EXPECT_NE(m.find("attention_forward: n_head must divide C = 6; got 4"), std::string::npos) << m;
  m = error_of([&] {
    attention_forward(view(out, {d.B, d.T, d.C}), view(att, {d.B, d.H, d.T, d.T}),
                      view(qkv, {d.B, d.T, 3 * d.C}), view(mask, {d.B * d.T}), 3, true);
  });
  EXPECT_NE(m.find("key_mask must be (2, 5)"), std::string::npos) << m;
  m = error_of([&] {
    attention_forward(view(out, {d.B, d.T, d.C}), view(att, {d.B, d.H, d.T, d.T}),
                      view(qkv, {d.B, d.T, 3 * d.C}), Tensor(out.data(), {d.B, d.T}, DType::kF32),
                      3, true);
  });
  EXPECT_NE(m.find("key_mask has dtype f32"), std::string::npos) << m;
  const Device gpu = Device::cuda(0);
  m = error_of([&] {
    attention_backward(view(qkv, {d.B, d.T, 3 * d.C}, gpu), view(att, {d.B, d.H, d.T, d.T}, gpu),
                       view(out, {d.B, d.T, d.C}, gpu), view(qkv, {d.B, d.T, 3 * d.C}, gpu),
                       view(att, {d.B, d.H, d.T, d.T}, gpu), 3, true);
  });
  EXPECT_NE(m.find("attention_backward: the tensors are on cuda:0"), std::string::npos) << m;
}

}  // namespace
}  // namespace loom::test
