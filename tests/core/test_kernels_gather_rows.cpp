// The gather_rows kernels (core/kernels.h) on the CPU reference: forward against a naive
// loop on odd sizes (repeated positions, empty slots), the scatter-add backward against
// central finite differences in double, f32 against f64, and bad positions, shapes and
// CUDA tensors refused naming what is wrong.
#include <gtest/gtest.h>

#include <vector>

#include "core/kernels.h"
#include "tests/core/test_kernels_common.h"

namespace loom::test {
namespace {

constexpr int64_t B = 3, T = 7, P = 5, C = 5;

// Per sequence: repeated positions, the first and last row, empty slots (−1).
std::vector<int32_t> positions() {
  return {0, 6, 3, 3, -1,    //
          2, 2, 2, 5, 1,     //
          -1, 4, 0, 6, -1};
}

TEST(GatherRows, ForwardMatchesNaiveLoop) {
  std::vector<int32_t> pos = positions();
  std::vector<double> in = random_values<double>(B * T * C, 1), out(sz(B * P * C), 99.0);
  gather_rows_forward(view(out, {B, P, C}), view(in, {B, T, C}), view(pos, {B, P}));
  std::vector<double> expected(sz(B * P * C), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t p = 0; p < P; ++p)
      for (int64_t c = 0; c < C; ++c) {
        const int32_t t = pos[sz(b * P + p)];
        if (t >= 0) expected[sz((b * P + p) * C + c)] = in[sz((b * T + t) * C + c)];
      }
  expect_close(out, expected, 0, 0, "out f64");
  std::vector<float> in_f = cast<float>(in), out_f(sz(B * P * C), 99.0f);
  gather_rows_forward(view(out_f, {B, P, C}), view(in_f, {B, T, C}), view(pos, {B, P}));
  expect_close(out_f, expected, 1e-7, 1e-7, "out f32");
}

TEST(GatherRows, BackwardMatchesFiniteDifferencesAndWritesDin) {
  std::vector<int32_t> pos = positions();
  std::vector<double> in = random_values<double>(B * T * C, 2);
  std::vector<double> r = random_values<double>(B * P * C, 3);
  auto loss = [&] {
    std::vector<double> out(sz(B * P * C));
    gather_rows_forward(view(out, {B, P, C}), view(in, {B, T, C}), view(pos, {B, P}));
    return dot(out, r);
  };
  std::vector<double> din(sz(B * T * C), 99.0);   // written: the 99s must go
  gather_rows_backward(view(din, {B, T, C}), view(r, {B, P, C}), view(pos, {B, P}));
  expect_close(din, numeric_grad(in, loss), 1e-10, 1e-8, "din");
  std::vector<float> din_f(sz(B * T * C), 99.0f), r_f = cast<float>(r);
  gather_rows_backward(view(din_f, {B, T, C}), view(r_f, {B, P, C}), view(pos, {B, P}));
  expect_close(din_f, din, 1e-6, 1e-6, "din f32");
}

TEST(GatherRows, RefusesBadPositionsShapesAndCudaTensors) {
  std::vector<int32_t> pos = positions();
  std::vector<double> in(sz(B * T * C)), out(sz(B * P * C), 5.0);
  pos[sz(1 * P + 3)] = int32_t(T);   // (1, 3) = T
  std::string m = error_of([&] {
    gather_rows_forward(view(out, {B, P, C}), view(in, {B, T, C}), view(pos, {B, P}));
  });
  EXPECT_NE(m.find("gather_rows_forward: positions[1, 3] = 7 is outside [0, 7)"),
            std::string::npos) << m;
  EXPECT_EQ(out[0], 5.0) << "nothing written before the check";
  pos[sz(1 * P + 3)] = -2;
  m = error_of([&] {
    gather_rows_backward(view(in, {B, T, C}), view(out, {B, P, C}), view(pos, {B, P}));
  });
  EXPECT_NE(m.find("gather_rows_backward: positions[1, 3] = -2"), std::string::npos) << m;
  pos = positions();
  m = error_of([&] {
    gather_rows_forward(view(out, {B * P, C}), view(in, {B, T, C}), view(pos, {B, P}));
  });
  EXPECT_NE(m.find("gather_rows_forward: out must be (3, 5, 5)"), std::string::npos) << m;
  m = error_of([&] {
    gather_rows_forward(view(out, {B, P, C}), view(in, {B, T, C}), view(pos, {B - 1, P}));
  });
  EXPECT_NE(m.find("gather_rows_forward: positions must be (B, P) with B = 3"),
            std::string::npos) << m;
  std::vector<float> pos_f(sz(B * P));
  m = error_of([&] {
    gather_rows_forward(view(out, {B, P, C}), view(in, {B, T, C}), view(pos_f, {B, P}));
  });
  EXPECT_NE(m.find("positions has dtype f32; integer arguments are i32"), std::string::npos) << m;
  m = error_of([&] {
    gather_rows_forward(view(out, {B, P, C}, Device::cuda(0)), view(in, {B, T, C}, Device::cuda(0)),
                        view(pos, {B, P}, Device::cuda(0)));
  });
  EXPECT_NE(m.find("gather_rows_forward: the tensors are on cuda:0"), std::string::npos) << m;
}

}  // namespace
}  // namespace loom::test
