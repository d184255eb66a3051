// The attention kernels (core/kernels.h) on the CPU reference, both paths of Note [Saved
// probabilities or lse] (att given; lse only, Note [Attention from lse]): forward (out,
// lse and the saved probabilities) against a naive double loop, causal and/or
// key-padding masks, queries and whole sequences whose keys are all masked (zeros and
// lse = +inf, no NaN), backward against central finite differences in double and the two
// paths against each other, T past the causal row block (Note [Causal blocks]), odd T and
// D, several heads, the scratch (NaN on entry does not leak), f32 against f64, and the
// refusals.
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

constexpr double kInf = std::numeric_limits<double>::infinity();

// out (B, T, C), lse (B, H, T) and att (B, H, T, T) in double from qkv (B, T, 3C).
void naive_attention(std::vector<double>& out, std::vector<double>& lse,
                     std::vector<double>& att, const std::vector<double>& qkv,
                     const std::vector<int32_t>* mask, const Dims& d, bool causal) {
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
        lse[sz((b * d.H + h) * T + t)] = sum > 0 ? m + std::log(sum) : kInf;
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
// Small odd sizes; T = 67 passes the causal row block of 64; D = 5 with 3 heads; B = 3
// has a sequence whose keys are all padding.
const Case kCases[] = {
    {"causal", {2, 5, 6, 3}, true, false},
    {"padding", {2, 5, 6, 3}, false, true},
    {"causal_padding", {2, 5, 6, 3}, true, true},
    {"causal_long", {1, 67, 6, 3}, true, false},
    {"padding_long", {1, 67, 4, 2}, false, true},
    {"odd_head_all_padded", {3, 7, 15, 3}, false, true},
    {"causal_odd_head_all_padded", {3, 7, 15, 3}, true, true},
};

// Batch 0 masks key 2; batch 1 masks key 0 (with a causal mask query 0 then sees no key)
// and the last key; batch 2 masks every key; the long cases mask keys 1, 64 and 65.
std::vector<int32_t> mask_of(const Dims& d) {
  std::vector<int32_t> m(sz(d.B * d.T), 1);
  if (d.T > 64) {
    for (int64_t s : {1, 64, 65}) m[sz(s)] = 0;
    return m;
  }
  m[2] = 0;
  m[sz(d.T)] = 0;
  m[sz(2 * d.T - 1)] = 0;
  for (int64_t s = 2 * d.T; s < d.B * d.T; ++s) m[sz(s)] = 0;
  return m;
}

// lse: +inf exactly where expected, the finite values within (atol, rtol).
template <class F>
void expect_lse(const std::vector<F>& got, const std::vector<double>& want, double atol,
                double rtol, const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  std::vector<double> g(got.size()), w(want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_EQ(std::isinf(double(got[i])), std::isinf(want[i]))
        << what << ": index " << i << ": expected " << want[i] << ", actual " << got[i];
    if (std::isinf(want[i])) {
      ASSERT_GT(double(got[i]), 0.0) << what << ": index " << i;
    }
    g[i] = std::isinf(want[i]) ? 0.0 : double(got[i]);
    w[i] = std::isinf(want[i]) ? 0.0 : want[i];
  }
  expect_close(g, w, atol, rtol, what);
}

// Forward then backward in precision F on either path (Note [Saved probabilities or lse]):
// dqkv for the loss Σ out ⊙ r. The outputs and the scratch start as 99 / NaN.
template <class F>
struct AttnRun {
  const Dims& d;
  bool causal, save_p;
  Tensor key_mask;
  std::vector<F> out, lse, att, dqkv, scratch;

  AttnRun(const Dims& dims, bool c, bool save, Tensor mask)
      : d(dims), causal(c), save_p(save), key_mask(mask),
        out(sz(d.B * d.T * d.C), F(99)), lse(sz(d.B * d.H * d.T), F(99)),
        att(save ? sz(d.B * d.H * d.T * d.T) : 0, F(99)), dqkv(sz(d.B * d.T * 3 * d.C), F(99)),
        scratch(save ? att.size() : lse.size(), std::numeric_limits<F>::quiet_NaN()) {}
  Tensor att_t() { return save_p ? view(att, {d.B, d.H, d.T, d.T}) : Tensor{}; }
  Tensor scratch_t() {
    return save_p ? view(scratch, {d.B, d.H, d.T, d.T}) : view(scratch, {d.B, d.H, d.T});
  }
  void forward(std::vector<F>& qkv) {
    attention_forward(view(out, {d.B, d.T, d.C}), view(lse, {d.B, d.H, d.T}), att_t(),
                      view(qkv, {d.B, d.T, 3 * d.C}), key_mask, int(d.H), causal);
  }
  void backward(std::vector<F>& qkv, std::vector<F>& r) {
    std::fill(scratch.begin(), scratch.end(), std::numeric_limits<F>::quiet_NaN());
    std::fill(dqkv.begin(), dqkv.end(), F(99));
    attention_backward(view(dqkv, {d.B, d.T, 3 * d.C}), scratch_t(), view(r, {d.B, d.T, d.C}),
                       view(qkv, {d.B, d.T, 3 * d.C}), view(out, {d.B, d.T, d.C}),
                       view(lse, {d.B, d.H, d.T}), att_t(), key_mask, int(d.H), causal);
  }
};

class Attention : public ::testing::TestWithParam<Case> {};
INSTANTIATE_TEST_SUITE_P(Masks, Attention, ::testing::ValuesIn(kCases),
                         [](const auto& param_info) { return std::string(param_info.param.name); });

TEST_P(Attention, ForwardMatchesNaiveLoopInBothPrecisionsOnBothPaths) {
  const Case& c = GetParam();
  const Dims& d = c.d;
  std::vector<double> qkv = cast<double>(cast<float>(random_values<double>(d.B * d.T * 3 * d.C, 1)));
  for (double& x : qkv) x *= 2;   // peakier softmax
  std::vector<int32_t> mask = mask_of(d);
  const std::vector<int32_t>* mp = c.masked ? &mask : nullptr;
  std::vector<double> out_e(sz(d.B * d.T * d.C)), lse_e(sz(d.B * d.H * d.T)),
      att_e(sz(d.B * d.H * d.T * d.T));
  naive_attention(out_e, lse_e, att_e, qkv, mp, d, c.causal);
  Tensor key_mask = c.masked ? view(mask, {d.B, d.T}) : Tensor{};
  std::vector<float> qkv_f = cast<float>(qkv);
  for (bool save_p : {true, false}) {
    SCOPED_TRACE(save_p ? "att given" : "lse only");
    AttnRun<double> f64(d, c.causal, save_p, key_mask);
    f64.forward(qkv);
    expect_close(f64.out, out_e, 1e-13, 1e-12, "out f64");
    expect_lse(f64.lse, lse_e, 1e-13, 1e-12, "lse f64");
    if (save_p) expect_close(f64.att, att_e, 1e-13, 1e-12, "att f64");
    AttnRun<float> f32(d, c.causal, save_p, key_mask);
    f32.forward(qkv_f);
    expect_close(f32.out, out_e, 1e-5, 1e-5, "out f32");
    expect_lse(f32.lse, lse_e, 1e-5, 1e-5, "lse f32");
    if (save_p) expect_close(f32.att, att_e, 1e-6, 1e-5, "att f32");
    if (c.masked && c.causal && d.B > 1) {   // batch 1, query 0: its only key is masked
      for (int64_t h = 0; h < d.H; ++h) {
        EXPECT_TRUE(std::isinf(f32.lse[sz((1 * d.H + h) * d.T)])) << "head " << h;
        for (int64_t j = 0; j < d.D(); ++j)
          ASSERT_EQ(f32.out[sz((1 * d.T + 0) * d.C + h * d.D() + j)], 0.0f) << "head " << h;
      }
    }
    if (c.masked && d.B > 2) {   // batch 2: every key masked
      for (int64_t i = 2 * d.T * d.C; i < 3 * d.T * d.C; ++i) ASSERT_EQ(f32.out[sz(i)], 0.0f) << i;
    }
  }
}

TEST_P(Attention, BackwardMatchesFiniteDifferencesInDoubleOnBothPaths) {
  const Case& c = GetParam();
  const Dims& d = c.d;
  std::vector<double> qkv = random_values<double>(d.B * d.T * 3 * d.C, 11);
  std::vector<double> r = random_values<double>(d.B * d.T * d.C, 12);
  std::vector<int32_t> mask = mask_of(d);
  Tensor key_mask = c.masked ? view(mask, {d.B, d.T}) : Tensor{};
  AttnRun<double> with_att(d, c.causal, true, key_mask), lse_only(d, c.causal, false, key_mask);
  auto loss = [&] {
    with_att.forward(qkv);
    return dot(with_att.out, r);
  };
  const std::vector<double> numeric = numeric_grad(qkv, loss);
  for (AttnRun<double>* run : {&with_att, &lse_only}) {
    SCOPED_TRACE(run->save_p ? "att given" : "lse only");
    run->forward(qkv);
    run->backward(qkv, r);
    expect_close(run->dqkv, numeric, 1e-8, 1e-6, "dqkv");
  }
  // The two paths agree to rounding, not just to the finite differences' O(h²).
  expect_close(lse_only.dqkv, with_att.dqkv, 1e-13, 1e-11, "dqkv lse only vs att given");
  if (c.masked && d.B > 2) {   // batch 2: every key masked, so no gradient at all
    for (int64_t i = 2 * d.T * 3 * d.C; i < 3 * d.T * 3 * d.C; ++i)
      ASSERT_EQ(lse_only.dqkv[sz(i)], 0.0) << i;
  }
  // f32 agrees with f64 on the same (float-representable) inputs, on both paths.
  std::vector<float> qkv_f = cast<float>(qkv), r_f = cast<float>(r);
  qkv = cast<double>(qkv_f);
  r = cast<double>(r_f);
  for (bool save_p : {true, false}) {
    SCOPED_TRACE(save_p ? "att given" : "lse only");
    AttnRun<double> f64(d, c.causal, save_p, key_mask);
    f64.forward(qkv);
    f64.backward(qkv, r);
    AttnRun<float> f32(d, c.causal, save_p, key_mask);
    f32.forward(qkv_f);
    f32.backward(qkv_f, r_f);
    expect_close(f32.dqkv, f64.dqkv, 1e-5, 1e-4, "dqkv f32");
  }
}

TEST(AttentionDispatch, BadArgumentsAreRefused) {
  const Dims d{2, 5, 6, 3};
  std::vector<float> qkv(sz(d.B * d.T * 3 * d.C)), out(sz(d.B * d.T * d.C)),
      att(sz(d.B * d.H * d.T * d.T)), lse(sz(d.B * d.H * d.T));
  std::vector<int32_t> mask(sz(d.B * d.T), 1);
  const Shape sq{d.B, d.T, 3 * d.C}, so{d.B, d.T, d.C}, sa{d.B, d.H, d.T, d.T}, sl{d.B, d.H, d.T};
  std::string m = error_of([&] {
    attention_forward(view(out, so), view(lse, sl), view(att, sa), view(qkv, sq), Tensor{}, 4,
                      true);
  });
  EXPECT_NE(m.find("attention_forward: n_head must divide C = 6; got 4"), std::string::npos) << m;
  m = error_of([&] {
    attention_forward(view(out, so), view(lse, sl), view(att, sa), view(qkv, sq),
                      view(mask, {d.B * d.T}), 3, true);
  });
  EXPECT_NE(m.find("key_mask must be (2, 5)"), std::string::npos) << m;
  m = error_of([&] {
    attention_forward(view(out, so), view(lse, sl), view(att, sa), view(qkv, sq),
                      Tensor(out.data(), {d.B, d.T}, DType::kF32), 3, true);
  });
  EXPECT_NE(m.find("key_mask has dtype f32"), std::string::npos) << m;
  m = error_of([&] {
    attention_forward(view(out, so), view(lse, {d.B, d.T}), Tensor{}, view(qkv, sq), Tensor{}, 3,
                      true);
  });
  EXPECT_NE(m.find("attention_forward: lse must be (2, 3, 5); got (2, 5)"), std::string::npos) << m;
  m = error_of([&] {
    attention_forward(view(out, so), Tensor{}, view(att, sa), view(qkv, sq), Tensor{}, 3, true);
  });
  EXPECT_NE(m.find("attention_forward: argument 'lse' is missing"), std::string::npos) << m;
  m = error_of([&] {
    attention_forward(view(out, so), view(lse, sl), view(att, {d.B, d.T, d.T}), view(qkv, sq),
                      Tensor{}, 3, true);
  });
  EXPECT_NE(m.find("att must be (2, 3, 5, 5) or empty"), std::string::npos) << m;
  // The scratch follows att: (B, H, T, T) with it, (B, H, T) without.
  m = error_of([&] {
    attention_backward(view(qkv, sq), view(att, sa), view(out, so), view(qkv, sq), view(out, so),
                       view(lse, sl), Tensor{}, Tensor{}, 3, true);
  });
  EXPECT_NE(m.find("scratch must be (2, 3, 5) (B, H, T) when att is empty; got (2, 3, 5, 5)"),
            std::string::npos)
      << m;
  m = error_of([&] {
    attention_backward(view(qkv, sq), view(lse, sl), view(out, so), view(qkv, sq), view(out, so),
                       view(lse, sl), view(att, sa), Tensor{}, 3, true);
  });
  EXPECT_NE(m.find("scratch must be (2, 3, 5, 5), att's shape; got (2, 3, 5)"), std::string::npos)
      << m;
  const Device gpu = Device::cuda(0);
  m = error_of([&] {
    attention_backward(view(qkv, sq, gpu), view(lse, sl, gpu), view(out, so, gpu),
                       view(qkv, sq, gpu), view(out, so, gpu), view(lse, sl, gpu), Tensor{},
                       Tensor{}, 3, true);
  });
  EXPECT_NE(m.find("attention_backward: the tensors are on cuda:0"), std::string::npos) << m;
}

TEST(AttentionDispatch, OnlyTheCpuSavesProbabilities) {
  EXPECT_TRUE(attention_saves_probabilities(Device::cpu()));
  EXPECT_FALSE(attention_saves_probabilities(Device::cuda(0)));
}

}  // namespace
}  // namespace loom::test
