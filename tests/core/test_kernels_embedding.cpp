// The embedding kernels (core/kernels.h) on the CPU reference: forward against a naive
// loop, backward against central finite differences in double (repeated ids included),
// accumulation, out-of-range ids refused by name and index, integer-argument checks.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/kernels.h"
#include "tests/core/test_kernels_common.h"

namespace loom::test {
namespace {

constexpr int64_t B = 2, T = 5, C = 6, V = 7, P = 8, S = 3;   // odd sizes, P > T

// Ids with repeats (the same token at several positions) and every segment used.
std::vector<int32_t> tokens_of() { return {3, 1, 3, 6, 0, 2, 3, 5, 1, 3}; }
std::vector<int32_t> segments_of() { return {0, 0, 1, 1, 2, 0, 1, 1, 2, 2}; }

template <class F>
class EmbeddingForward : public ::testing::Test {};
using FloatTypes = ::testing::Types<float, double>;
TYPED_TEST_SUITE(EmbeddingForward, FloatTypes);

TYPED_TEST(EmbeddingForward, MatchesNaiveLoopWithAndWithoutSegments) {
  using F = TypeParam;
  std::vector<F> wte = cast<F>(random_values<double>(V * C, 1));
  std::vector<F> wpe = cast<F>(random_values<double>(P * C, 2));
  std::vector<F> wse = cast<F>(random_values<double>(S * C, 3));
  std::vector<int32_t> tokens = tokens_of(), segments = segments_of();
  std::vector<F> out(sz(B * T * C), F(99));
  for (bool with_segments : {false, true}) {
    embedding_forward(view(out, {B, T, C}), view(tokens, {B, T}),
                      with_segments ? view(segments, {B, T}) : Tensor{}, view(wte, {V, C}),
                      view(wpe, {P, C}), with_segments ? view(wse, {S, C}) : Tensor{});
    std::vector<double> expected(out.size());
    for (int64_t b = 0; b < B; ++b)
      for (int64_t t = 0; t < T; ++t)
        for (int64_t c = 0; c < C; ++c) {
          const int64_t n = b * T + t;
          double e = double(wte[sz(tokens[sz(n)] * C + c)]) + double(wpe[sz(t * C + c)]);
          if (with_segments) e += double(wse[sz(segments[sz(n)] * C + c)]);
          expected[sz(n * C + c)] = e;
        }
    expect_close(out, expected, 1e-6, 1e-6, with_segments ? "out with segments" : "out");
  }
}

TEST(EmbeddingBackward, MatchesCentralFiniteDifferencesAndAccumulates) {
  std::vector<double> wte = random_values<double>(V * C, 11), wpe = random_values<double>(P * C, 12),
                      wse = random_values<double>(S * C, 13), r = random_values<double>(B * T * C, 14);
  std::vector<int32_t> tokens = tokens_of(), segments = segments_of();
  auto loss = [&] {
    std::vector<double> out(sz(B * T * C));
    embedding_forward(view(out, {B, T, C}), view(tokens, {B, T}), view(segments, {B, T}),
                      view(wte, {V, C}), view(wpe, {P, C}), view(wse, {S, C}));
    return dot(out, r);
  };
  // Start from non-zero gradients: the kernel must add, not write.
  std::vector<double> dwte(sz(V * C), 0.5), dwpe(sz(P * C), -0.25), dwse(sz(S * C), 2.0);
  embedding_backward(view(dwte, {V, C}), view(dwpe, {P, C}), view(dwse, {S, C}),
                     view(r, {B, T, C}), view(tokens, {B, T}), view(segments, {B, T}));
  std::vector<double> num_wte = numeric_grad(wte, loss), num_wpe = numeric_grad(wpe, loss),
                      num_wse = numeric_grad(wse, loss);
  for (double& g : num_wte) g += 0.5;
  for (double& g : num_wpe) g -= 0.25;
  for (double& g : num_wse) g += 2.0;
  expect_close(dwte, num_wte, 1e-8, 1e-8, "dwte");
  expect_close(dwpe, num_wpe, 1e-8, 1e-8, "dwpe (rows T..P untouched)");
  expect_close(dwse, num_wse, 1e-8, 1e-8, "dwse");
}

TEST(EmbeddingBackward, F32AgreesWithF64WithoutSegments) {
  std::vector<double> dout = cast<double>(cast<float>(random_values<double>(B * T * C, 21)));
  std::vector<float> dout_f = cast<float>(dout);
  std::vector<int32_t> tokens = tokens_of();
  std::vector<double> dwte(sz(V * C)), dwpe(sz(P * C));
  std::vector<float> dwte_f(sz(V * C)), dwpe_f(sz(P * C));
  embedding_backward(view(dwte, {V, C}), view(dwpe, {P, C}), Tensor{}, view(dout, {B, T, C}),
                     view(tokens, {B, T}), Tensor{});
  embedding_backward(view(dwte_f, {V, C}), view(dwpe_f, {P, C}), Tensor{},
                     view(dout_f, {B, T, C}), view(tokens, {B, T}), Tensor{});
  expect_close(dwte_f, dwte, 1e-6, 1e-6, "dwte f32");
  expect_close(dwpe_f, dwpe, 1e-6, 1e-6, "dwpe f32");
}

TEST(Embedding, OutOfRangeIdsAreRefusedByNameAndIndexBeforeWriting) {
  std::vector<float> wte(sz(V * C), 1.0f), wpe(sz(P * C), 1.0f), wse(sz(S * C), 1.0f);
  std::vector<float> out(sz(B * T * C), 7.0f);
  std::vector<int32_t> tokens = tokens_of(), segments = segments_of();
  tokens[sz(1 * T + 3)] = int32_t{V};   // (b 1, t 3)
  std::string m = error_of([&] {
    embedding_forward(view(out, {B, T, C}), view(tokens, {B, T}), Tensor{}, view(wte, {V, C}),
                      view(wpe, {P, C}), Tensor{});
  });
  EXPECT_NE(m.find("embedding_forward: tokens[1, 3] = 7 is outside [0, 7)"), std::string::npos)
      << m;
  for (float v : out) ASSERT_EQ(v, 7.0f) << "a refused call wrote out";
  tokens = tokens_of();
  tokens[0] = -1;
  m = error_of([&] {
    embedding_backward(view(wte, {V, C}), view(wpe, {P, C}), Tensor{}, view(out, {B, T, C}),
                       view(tokens, {B, T}), Tensor{});
  });
  EXPECT_NE(m.find("embedding_backward: tokens[0, 0] = -1"), std::string::npos) << m;
  for (float v : wte) ASSERT_EQ(v, 1.0f) << "a refused call wrote dwte";
  tokens = tokens_of();
  segments[sz(T + 4)] = 3;
  m = error_of([&] {
    embedding_forward(view(out, {B, T, C}), view(tokens, {B, T}), view(segments, {B, T}),
                      view(wte, {V, C}), view(wpe, {P, C}), view(wse, {S, C}));
  });
  EXPECT_NE(m.find("segments[1, 4] = 3"), std::string::npos) << m;
}

TEST(Embedding, IntegerArgumentsAreChecked) {
  std::vector<float> wte(sz(V * C)), wpe(sz(P * C)), out(sz(B * T * C)), tokens_f(sz(B * T));
  std::vector<int32_t> tokens = tokens_of();
  std::string m = error_of([&] {   // float token ids
    embedding_forward(view(out, {B, T, C}), view(tokens_f, {B, T}), Tensor{}, view(wte, {V, C}),
                      view(wpe, {P, C}), Tensor{});
  });
  EXPECT_NE(m.find("tokens has dtype f32; integer arguments are i32"), std::string::npos) << m;
  m = error_of([&] {   // ids on another device
    embedding_forward(view(out, {B, T, C}), view(tokens, {B, T}, Device::cuda(0)), Tensor{},
                      view(wte, {V, C}), view(wpe, {P, C}), Tensor{});
  });
  EXPECT_NE(m.find("tokens on cuda:0"), std::string::npos) << m;
  m = error_of([&] {   // a position table shorter than T
    embedding_forward(view(out, {B, T, C}), view(tokens, {B, T}), Tensor{}, view(wte, {V, C}),
                      Tensor(wpe.data(), {T - 1, C}, DType::kF32), Tensor{});
  });
  EXPECT_NE(m.find("wpe must be"), std::string::npos) << m;
  m = error_of([&] {   // all on a CUDA device: no CUDA kernel in this test build
    embedding_forward(view(out, {B, T, C}, Device::cuda(0)), view(tokens, {B, T}, Device::cuda(0)),
                      Tensor{}, view(wte, {V, C}, Device::cuda(0)),
                      view(wpe, {P, C}, Device::cuda(0)), Tensor{});
  });
  EXPECT_NE(m.find("embedding_forward: the tensors are on cuda:0"), std::string::npos) << m;
}

}  // namespace
}  // namespace loom::test
