// Every CUDA kernel family (core/cuda/<family>.cu) against the CPU reference on the same
// inputs (label: gpu). Skips visibly without a GPU (LOOM_SKIP_NO_GPU, allowed under CI);
// the refusals a build with CUDA owes a machine without a GPU are checked there too.
//
// Note [GPU kernel tolerances]
// The reference is the CPU kernel run in f64 on the very f32 inputs the GPU gets (every
// float is exact in double), so it is the exact result to ~1e-15 and the whole difference
// is the GPU's fp32 rounding. An element passes when
//   |gpu − ref| <= rel · |ref| + abs · scale,   scale = max(1, max |ref| over the tensor)
// fp32: rel = 1e-5, abs = 1e-5. fp32's unit roundoff is 6e-8; the longest sums here
// (V = 1001 logits, T·D products, N rows of a weight gradient) stay within ~√n·6e-8 of the
// terms' scale in practice and within 1e-5 by a wide margin; a wrong mask, a wrong index or
// a missed accumulation is off by O(1e-1) or more.
// TF32 (set_cuda_tf32(true)): inputs rounded to a 10-bit mantissa (2^-11 ≈ 4.9e-4 each),
// so rel = abs = 1e-2.
// Two families are compared bit for bit with the CPU reference in f32 instead: the
// embedding's dwte/dwpe and gather_rows' backward sum in the CPU's order by design (Note
// [Deterministic embedding gradients on the GPU], core/cuda/gather_rows.cu).
#include <gtest/gtest.h>

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/buffer.h"
#include "core/device.h"
#include "core/kernels.h"
#include "tests/core/test_kernels_common.h"
#include "tests/support/test_support.h"

namespace loom::test {
namespace {

constexpr double kF32Rel = 1e-5, kF32Abs = 1e-5;   // Note [GPU kernel tolerances]
constexpr double kTf32Rel = 1e-2, kTf32Abs = 1e-2;
const Device kGpu = Device::cuda(0);

#define LOOM_REQUIRE_GPU()                                                                   \
  do {                                                                                       \
    if (!cuda_available()) LOOM_SKIP_NO_GPU("no CUDA device visible to compare the kernels"); \
  } while (0)

// A tensor on cuda:0 holding `host`.
template <class T>
class OnGpu {
 public:
  OnGpu(const std::vector<T>& host, Shape shape)
      : shape_(shape), buf_(std::max<size_t>(host.size(), 1) * sizeof(T), kGpu) {
    EXPECT_EQ(int64_t(host.size()), shape.numel());
    if (!host.empty()) copy_bytes(buf_.data(), kGpu, host.data(), Device::cpu(), host.size() * sizeof(T));
  }
  Tensor t() const { return Tensor(buf_.data(), shape_, dtype_of<T>(), kGpu); }
  std::vector<T> get() const {
    std::vector<T> host(sz(shape_.numel()));
    if (!host.empty()) copy_bytes(host.data(), Device::cpu(), buf_.data(), kGpu, host.size() * sizeof(T));
    return host;
  }

 private:
  Shape shape_;
  Buffer buf_;
};

std::vector<float> uniform(std::mt19937& gen, int64_t n, float lo = -1.0f, float hi = 1.0f) {
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(sz(n));
  for (float& x : v) x = u(gen);
  return v;
}

std::vector<int32_t> ids(std::mt19937& gen, int64_t n, int32_t limit) {
  std::uniform_int_distribution<int32_t> u(0, limit - 1);
  std::vector<int32_t> v(sz(n));
  for (int32_t& x : v) x = u(gen);
  return v;
}

// Note [GPU kernel tolerances]; reports the worst elements.
void expect_close(const std::string& what, const std::vector<float>& got,
                  const std::vector<double>& want, double rel_tol = kF32Rel,
                  double abs_tol = kF32Abs) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 1.0;
  for (double w : want) scale = std::max(scale, std::fabs(w));
  size_t bad = 0;
  std::string first;
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(double(got[i]) - want[i]);
    const double tol = rel_tol * std::fabs(want[i]) + abs_tol * scale;
    worst = std::max(worst, err / tol);
    if (err <= tol) continue;   // NaN fails here too
    if (bad++ < 5)
      first += " [" + std::to_string(i) + "] gpu " + std::to_string(got[i]) + " cpu " +
               std::to_string(want[i]) + ";";
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << got.size()
                     << " elements outside the tolerance (rel " << rel_tol << ", abs " << abs_tol
                     << " x scale " << scale << "); worst error/tolerance " << worst << ":" << first;
}

std::vector<double> f64(const std::vector<float>& v) { return cast<double>(v); }

// ---- linear, squared error ----------------------------------------------------------

struct LinearCase {
  int64_t B, T, I, O;
};

void check_linear(const LinearCase& c, std::mt19937& gen, bool bias, double rel_tol,
                  double abs_tol) {
  const int64_t N = c.B * c.T;
  SCOPED_TRACE("linear B=" + std::to_string(c.B) + " T=" + std::to_string(c.T) + " I=" +
               std::to_string(c.I) + " O=" + std::to_string(c.O) + (bias ? " bias" : ""));
  auto in = uniform(gen, N * c.I), w = uniform(gen, c.O * c.I), bv = uniform(gen, c.O);
  auto dout = uniform(gen, N * c.O), dw0 = uniform(gen, c.O * c.I), db0 = uniform(gen, c.O);
  const Shape sin{c.B, c.T, c.I}, sout{c.B, c.T, c.O}, sw{c.O, c.I}, sb{c.O};
  // GPU
  OnGpu<float> g_in(in, sin), g_w(w, sw), g_b(bv, sb), g_out(std::vector<float>(sz(N * c.O), NAN), sout);
  OnGpu<float> g_dout(dout, sout), g_din(std::vector<float>(sz(N * c.I), NAN), sin), g_dw(dw0, sw), g_db(db0, sb);
  linear_forward(g_out.t(), g_in.t(), g_w.t(), bias ? g_b.t() : Tensor{});
  linear_backward(g_din.t(), g_dw.t(), bias ? g_db.t() : Tensor{}, g_dout.t(), g_in.t(), g_w.t());
  // CPU reference in f64
  auto d_in = f64(in), d_w = f64(w), d_b = f64(bv), d_dout = f64(dout), d_dw = f64(dw0), d_db = f64(db0);
  std::vector<double> d_out(sz(N * c.O)), d_din(sz(N * c.I));
  linear_forward(view(d_out, sout), view(d_in, sin), view(d_w, sw), bias ? view(d_b, sb) : Tensor{});
  linear_backward(view(d_din, sin), view(d_dw, sw), bias ? view(d_db, sb) : Tensor{},
                  view(d_dout, sout), view(d_in, sin), view(d_w, sw));
  expect_close("out", g_out.get(), d_out, rel_tol, abs_tol);
  expect_close("din", g_din.get(), d_din, rel_tol, abs_tol);
  expect_close("dweight (accumulated onto its initial values)", g_dw.get(), d_dw, rel_tol, abs_tol);
  if (bias) {
    expect_close("dbias (accumulated)", g_db.get(), d_db, rel_tol, abs_tol);
  } else {
    EXPECT_EQ(g_db.get(), db0) << "dbias was not passed and must be untouched";
  }
}

TEST(GpuKernels, LinearMatchesCpuOnOddAndRandomShapes) {
  LOOM_REQUIRE_GPU();
  set_cuda_tf32(false);
  std::mt19937 gen(19);
  for (bool bias : {true, false}) check_linear({3, 13, 67, 45}, gen, bias, kF32Rel, kF32Abs);
  check_linear({1, 1, 1, 1}, gen, true, kF32Rel, kF32Abs);
  std::uniform_int_distribution<int64_t> dim(1, 97);
  for (int r = 0; r < 4; ++r)
    check_linear({dim(gen) % 4 + 1, dim(gen), dim(gen), dim(gen)}, gen, r % 2 == 0, kF32Rel, kF32Abs);
  // No din (the first layer): dweight still accumulates.
  auto in = uniform(gen, 13 * 7), w = uniform(gen, 5 * 7), dout = uniform(gen, 13 * 5);
  OnGpu<float> g_in(in, {13, 7}), g_w(w, {5, 7}), g_dout(dout, {13, 5}), g_dw(std::vector<float>(35, 0.0f), {5, 7});
  linear_backward(Tensor{}, g_dw.t(), Tensor{}, g_dout.t(), g_in.t(), g_w.t());
  linear_backward(Tensor{}, g_dw.t(), Tensor{}, g_dout.t(), g_in.t(), g_w.t());
  auto d_in = f64(in), d_w = f64(w), d_dout = f64(dout);
  std::vector<double> d_dw(35, 0.0);
  for (int rep = 0; rep < 2; ++rep)
    linear_backward(Tensor{}, view(d_dw, {5, 7}), Tensor{}, view(d_dout, {13, 5}), view(d_in, {13, 7}), view(d_w, {5, 7}));
  expect_close("dweight after two backward calls", g_dw.get(), d_dw);
}

TEST(GpuKernels, LinearTf32IsLooserButCloseAndReachesCublas) {
  LOOM_REQUIRE_GPU();
  std::mt19937 gen(32);
  const int64_t n = 256;
  auto in = uniform(gen, n * n), w = uniform(gen, n * n);
  OnGpu<float> g_in(in, {n, n}), g_w(w, {n, n}), g_out(std::vector<float>(sz(n * n)), {n, n});
  auto d_in = f64(in), d_w = f64(w);
  std::vector<double> d_out(sz(n * n));
  linear_forward(view(d_out, {n, n}), view(d_in, {n, n}), view(d_w, {n, n}), Tensor{});
  set_cuda_tf32(true);
  EXPECT_TRUE(cuda_tf32());
  linear_forward(g_out.t(), g_in.t(), g_w.t(), Tensor{});
  set_cuda_tf32(false);
  const std::vector<float> tf32 = g_out.get();
  expect_close("out with TF32", tf32, d_out, kTf32Rel, kTf32Abs);
  linear_forward(g_out.t(), g_in.t(), g_w.t(), Tensor{});
  const std::vector<float> fp32 = g_out.get();
  expect_close("out with fp32 after TF32 was switched off", fp32, d_out);
  // K = 256 products of TF32-rounded inputs: errors ~1e-3 against fp32's ~1e-6. If no
  // element differs by more than fp32 could, the setting never reached cuBLAS.
  double worst = 0;
  for (size_t i = 0; i < tf32.size(); ++i) worst = std::max(worst, std::fabs(tf32[i] - d_out[i]));
  EXPECT_GT(worst, 1e-4) << "set_cuda_tf32(true) gave fp32-exact results: TF32 not in use";
}

TEST(GpuKernels, SquaredErrorMatchesCpu) {
  LOOM_REQUIRE_GPU();
  std::mt19937 gen(7);
  for (int64_t K : {1, 31, 67, 1001}) {
    const int64_t N = 13;
    auto pred = uniform(gen, N * K), target = uniform(gen, N * K);
    OnGpu<float> g_p(pred, {N, K}), g_t(target, {N, K}), g_loss(std::vector<float>(sz(N)), {N}),
        g_d(std::vector<float>(sz(N * K)), {N, K});
    squared_error_forward(g_loss.t(), g_p.t(), g_t.t());
    squared_error_backward(g_d.t(), g_p.t(), g_t.t());
    auto d_p = f64(pred), d_t = f64(target);
    std::vector<double> loss(sz(N)), d(sz(N * K));
    squared_error_forward(view(loss, {N}), view(d_p, {N, K}), view(d_t, {N, K}));
    squared_error_backward(view(d, {N, K}), view(d_p, {N, K}), view(d_t, {N, K}));
    expect_close("loss K=" + std::to_string(K), g_loss.get(), loss);
    expect_close("dpred K=" + std::to_string(K), g_d.get(), d);
  }
}

// ---- embedding ----------------------------------------------------------------------

TEST(GpuKernels, EmbeddingMatchesCpuAndBackwardIsBitwiseTheCpuOrder) {
  LOOM_REQUIRE_GPU();
  std::mt19937 gen(11);
  struct Case { int64_t B, T, C, V, P, S; };
  // V = 7 makes ids repeat many times (the scatter's hard case); V = 1001 spreads them.
  for (const Case& c : {Case{3, 13, 67, 7, 16, 0}, Case{2, 13, 67, 1001, 13, 2},
                        Case{4, 33, 768, 50, 40, 3}, Case{1, 1, 1, 1, 1, 0}}) {
    SCOPED_TRACE("embedding B=" + std::to_string(c.B) + " T=" + std::to_string(c.T) + " C=" +
                 std::to_string(c.C) + " V=" + std::to_string(c.V) + " S=" + std::to_string(c.S));
    const int64_t N = c.B * c.T;
    auto tok = ids(gen, N, int32_t(c.V)), seg = ids(gen, N, int32_t(std::max<int64_t>(c.S, 1)));
    auto wte = uniform(gen, c.V * c.C), wpe = uniform(gen, c.P * c.C), wse = uniform(gen, std::max<int64_t>(c.S, 1) * c.C);
    auto dout = uniform(gen, N * c.C), dwte0 = uniform(gen, c.V * c.C), dwpe0 = uniform(gen, c.P * c.C),
         dwse0 = uniform(gen, std::max<int64_t>(c.S, 1) * c.C);
    const bool with_seg = c.S > 0;
    const Shape sbt{c.B, c.T}, sbtc{c.B, c.T, c.C}, ste{c.V, c.C}, spe{c.P, c.C}, sse{std::max<int64_t>(c.S, 1), c.C};
    OnGpu<int32_t> g_tok(tok, sbt), g_seg(seg, sbt);
    OnGpu<float> g_wte(wte, ste), g_wpe(wpe, spe), g_wse(wse, sse), g_out(std::vector<float>(sz(N * c.C)), sbtc);
    OnGpu<float> g_dout(dout, sbtc), g_dwte(dwte0, ste), g_dwpe(dwpe0, spe), g_dwse(dwse0, sse);
    embedding_forward(g_out.t(), g_tok.t(), with_seg ? g_seg.t() : Tensor{}, g_wte.t(), g_wpe.t(), with_seg ? g_wse.t() : Tensor{});
    embedding_backward(g_dwte.t(), g_dwpe.t(), with_seg ? g_dwse.t() : Tensor{}, g_dout.t(), g_tok.t(), with_seg ? g_seg.t() : Tensor{});
    // f64 reference for the forward and dwse.
    auto d_wte = f64(wte), d_wpe = f64(wpe), d_wse = f64(wse), d_dout = f64(dout), d_dwse = f64(dwse0);
    auto d_dwte = f64(dwte0), d_dwpe = f64(dwpe0);
    std::vector<double> d_out(sz(N * c.C));
    embedding_forward(view(d_out, sbtc), view(tok, sbt), with_seg ? view(seg, sbt) : Tensor{}, view(d_wte, ste), view(d_wpe, spe), with_seg ? view(d_wse, sse) : Tensor{});
    embedding_backward(view(d_dwte, ste), view(d_dwpe, spe), with_seg ? view(d_dwse, sse) : Tensor{}, view(d_dout, sbtc), view(tok, sbt), with_seg ? view(seg, sbt) : Tensor{});
    expect_close("out", g_out.get(), d_out);
    expect_close("dwte", g_dwte.get(), d_dwte);
    expect_close("dwpe", g_dwpe.get(), d_dwpe);
    if (with_seg) {
      expect_close("dwse", g_dwse.get(), d_dwse);
    } else {
      EXPECT_EQ(g_dwse.get(), dwse0);
    }
    // f32 CPU reference: dwte and dwpe summed in the same order, so equal bit for bit.
    auto f_dwte = dwte0, f_dwpe = dwpe0, f_dwse = dwse0;
    embedding_backward(view(f_dwte, ste), view(f_dwpe, spe), with_seg ? view(f_dwse, sse) : Tensor{}, view(dout, sbtc), view(tok, sbt), with_seg ? view(seg, sbt) : Tensor{});
    EXPECT_TRUE(g_dwte.get() == f_dwte) << "dwte differs from the CPU's f32 sums in position order";
    EXPECT_TRUE(g_dwpe.get() == f_dwpe) << "dwpe differs from the CPU's f32 sums in position order";
    // Deterministic: a second run from the same start gives the same bits.
    OnGpu<float> again(dwte0, ste), again_pe(dwpe0, spe), again_se(dwse0, sse);
    embedding_backward(again.t(), again_pe.t(), with_seg ? again_se.t() : Tensor{}, g_dout.t(), g_tok.t(), with_seg ? g_seg.t() : Tensor{});
    EXPECT_TRUE(again.get() == g_dwte.get());
    EXPECT_TRUE(again_se.get() == g_dwse.get());
  }
}

TEST(GpuKernels, EmbeddingBadIdIsAnErrorNamingItAndWritesNothing) {
  LOOM_REQUIRE_GPU();
  const int64_t B = 2, T = 5, C = 3, V = 4;
  std::vector<int32_t> tok = {0, 1, 2, 3, 0, 1, 4, 2, -1, 0};   // [1, 1] = 4 is the first bad one
  OnGpu<int32_t> g_tok(tok, {B, T});
  OnGpu<float> g_wte(std::vector<float>(sz(V * C), 1.0f), {V, C}), g_wpe(std::vector<float>(sz(T * C), 1.0f), {T, C});
  OnGpu<float> g_out(std::vector<float>(sz(B * T * C), 7.0f), {B, T, C});
  const std::string m = error_of([&] { embedding_forward(g_out.t(), g_tok.t(), Tensor{}, g_wte.t(), g_wpe.t(), Tensor{}); });
  EXPECT_NE(m.find("embedding_forward: tokens[1, 1] = 4 is outside [0, 4)"), std::string::npos) << m;
  EXPECT_EQ(g_out.get(), std::vector<float>(sz(B * T * C), 7.0f)) << "out written despite a bad id";
  const std::string mb = error_of([&] { embedding_backward(g_wte.t(), g_wpe.t(), Tensor{}, g_out.t(), g_tok.t(), Tensor{}); });
  EXPECT_NE(mb.find("embedding_backward: tokens[1, 1] = 4"), std::string::npos) << mb;
  EXPECT_EQ(g_wte.get(), std::vector<float>(sz(V * C), 1.0f)) << "dwte written despite a bad id";
  // The flag is reset: good ids work afterwards.
  OnGpu<int32_t> good(std::vector<int32_t>(sz(B * T), 3), {B, T});
  EXPECT_EQ(error_of([&] { embedding_forward(g_out.t(), good.t(), Tensor{}, g_wte.t(), g_wpe.t(), Tensor{}); }), "no error");
  EXPECT_EQ(g_out.get(), std::vector<float>(sz(B * T * C), 2.0f));
}

// ---- layernorm, gelu, residual, tanh -------------------------------------------------

TEST(GpuKernels, LayernormMatchesCpuWithAndWithoutBias) {
  LOOM_REQUIRE_GPU();
  std::mt19937 gen(5);
  for (int64_t C : {1, 31, 67, 768, 1001})
    for (bool bias : {true, false}) {
      SCOPED_TRACE("layernorm C=" + std::to_string(C) + (bias ? " bias" : ""));
      const int64_t B = 3, T = 13, N = B * T;
      auto in = uniform(gen, N * C, -2.0f, 3.0f), w = uniform(gen, C), bv = uniform(gen, C);
      auto dout = uniform(gen, N * C), dw0 = uniform(gen, C), db0 = uniform(gen, C);
      const Shape s{B, T, C}, sc{C}, sr{B, T};
      OnGpu<float> g_in(in, s), g_w(w, sc), g_b(bv, sc), g_out(std::vector<float>(sz(N * C)), s),
          g_mean(std::vector<float>(sz(N)), sr), g_rstd(std::vector<float>(sz(N)), sr);
      OnGpu<float> g_dout(dout, s), g_din(std::vector<float>(sz(N * C)), s), g_dw(dw0, sc), g_db(db0, sc);
      layernorm_forward(g_out.t(), g_mean.t(), g_rstd.t(), g_in.t(), g_w.t(), bias ? g_b.t() : Tensor{}, 1e-5);
      layernorm_backward(g_din.t(), g_dw.t(), bias ? g_db.t() : Tensor{}, g_dout.t(), g_in.t(), g_w.t(), g_mean.t(), g_rstd.t());
      auto d_in = f64(in), d_w = f64(w), d_b = f64(bv), d_dout = f64(dout), d_dw = f64(dw0), d_db = f64(db0);
      std::vector<double> d_out(sz(N * C)), mean(sz(N)), rstd(sz(N)), d_din(sz(N * C));
      layernorm_forward(view(d_out, s), view(mean, sr), view(rstd, sr), view(d_in, s), view(d_w, sc), bias ? view(d_b, sc) : Tensor{}, 1e-5);
      layernorm_backward(view(d_din, s), view(d_dw, sc), bias ? view(d_db, sc) : Tensor{}, view(d_dout, s), view(d_in, s), view(d_w, sc), view(mean, sr), view(rstd, sr));
      expect_close("out", g_out.get(), d_out);
      expect_close("mean", g_mean.get(), mean);
      expect_close("rstd", g_rstd.get(), rstd);
      expect_close("din", g_din.get(), d_din);
      expect_close("dweight (accumulated)", g_dw.get(), d_dw);
      if (bias) {
        expect_close("dbias (accumulated)", g_db.get(), d_db);
      } else {
        EXPECT_EQ(g_db.get(), db0);
      }
    }
}

TEST(GpuKernels, GeluBothFormsMatchCpuAndBackwardMayOverwriteDout) {
  LOOM_REQUIRE_GPU();
  std::mt19937 gen(3);
  const int64_t B = 3, T = 13, C = 67, n = B * T * C;
  const Shape s{B, T, C};
  auto in = uniform(gen, n, -6.0f, 6.0f), dout = uniform(gen, n);
  for (GeluForm form : {GeluForm::kTanh, GeluForm::kErf}) {
    SCOPED_TRACE(form == GeluForm::kTanh ? "tanh form" : "erf form");
    OnGpu<float> g_in(in, s), g_out(std::vector<float>(sz(n)), s), g_d(dout, s);
    gelu_forward(g_out.t(), g_in.t(), form);
    gelu_backward(g_d.t(), g_d.t(), g_in.t(), form);   // in place
    auto d_in = f64(in), d_dout = f64(dout);
    std::vector<double> out(sz(n)), din(sz(n));
    gelu_forward(view(out, s), view(d_in, s), form);
    gelu_backward(view(din, s), view(d_dout, s), view(d_in, s), form);
    expect_close("out", g_out.get(), out);
    expect_close("din (in place of dout)", g_d.get(), din);
  }
}

TEST(GpuKernels, ResidualAndTanhMatchCpu) {
  LOOM_REQUIRE_GPU();
  std::mt19937 gen(2);
  const int64_t n = 3 * 13 * 67;
  const Shape s{3, 13, 67};
  auto a = uniform(gen, n), b = uniform(gen, n), dacc = uniform(gen, n), dout = uniform(gen, n);
  OnGpu<float> g_a(a, s), g_b(b, s), g_dacc(dacc, s), g_dout(dout, s);
  residual_forward(g_a.t(), g_a.t(), g_b.t());   // out is a's memory
  residual_backward(g_dacc.t(), g_dout.t());
  std::vector<double> sum(sz(n)), acc = f64(dacc);
  for (size_t i = 0; i < sum.size(); ++i) sum[i] = double(a[i]) + double(b[i]);
  auto d_dout = f64(dout);
  residual_backward(view(acc, s), view(d_dout, s));
  expect_close("a + b", g_a.get(), sum);
  expect_close("dacc += dout", g_dacc.get(), acc);

  auto in = uniform(gen, n, -4.0f, 4.0f);
  OnGpu<float> g_in(in, s), g_d(dout, s);
  tanh_forward(g_in.t(), g_in.t());                   // in place
  tanh_backward(g_d.t(), g_d.t(), g_in.t());          // in place, from the output
  auto d_in = f64(in);
  std::vector<double> out(sz(n)), din(sz(n));
  tanh_forward(view(out, s), view(d_in, s));
  tanh_backward(view(din, s), view(d_dout, s), view(out, s));
  expect_close("tanh", g_in.get(), out);
  expect_close("tanh din", g_d.get(), din);
}

// ---- attention ----------------------------------------------------------------------

struct AttnCase {
  int64_t B, T, C, H;
  bool causal;
  int mask;   // 0: none; 1: padding at the end of each sequence and one sequence all padding;
              // 2: the first keys padded (a causal query 0 then sees no key)
};

// lse: +inf (a query with no visible key) exactly where the reference has it, the finite
// values within the fp32 tolerance.
void expect_lse(const std::vector<float>& got, const std::vector<double>& want) {
  ASSERT_EQ(got.size(), want.size());
  std::vector<float> g = got;
  std::vector<double> w = want;
  for (size_t i = 0; i < g.size(); ++i) {
    ASSERT_EQ(std::isinf(g[i]) && g[i] > 0, std::isinf(w[i]))
        << "lse [" << i << "]: gpu " << g[i] << " cpu " << w[i];
    if (std::isinf(w[i])) g[i] = 0.0f, w[i] = 0.0;
  }
  expect_close("lse", g, w);
}

// Both paths of Note [Saved probabilities or lse] (core/kernels.h): save_p, the fused
// forward writing att and the cuBLAS backward; else lse only and the FA2-style backward
// (Note [Attention backward from lse], core/cuda/attention.cu). The reference is the CPU's
// f64 on the same path.
void check_attention(const AttnCase& c, bool save_p, std::mt19937& gen) {
  SCOPED_TRACE("attention B=" + std::to_string(c.B) + " T=" + std::to_string(c.T) + " C=" +
               std::to_string(c.C) + " H=" + std::to_string(c.H) +
               (c.causal ? " causal" : "") + " mask=" + std::to_string(c.mask) +
               (save_p ? " att given" : " lse only"));
  const int64_t B = c.B, T = c.T, C = c.C, H = c.H;
  const Shape sq{B, T, 3 * C}, so{B, T, C}, sa{B, H, T, T}, sl{B, H, T}, sm{B, T};
  const Shape ss = save_p ? sa : sl;   // the backward's scratch
  auto qkv = uniform(gen, B * T * 3 * C, -2.0f, 2.0f), dout = uniform(gen, B * T * C);
  std::vector<int32_t> mask(sz(B * T), 1);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t < T; ++t) {
      if (c.mask == 1) mask[sz(b * T + t)] = (b == B - 1) ? 0 : (t < T - 1 - b % 3 ? 1 : 0);
      if (c.mask == 2) mask[sz(b * T + t)] = t < 2 ? 0 : 1;
    }
  OnGpu<float> g_qkv(qkv, sq), g_out(std::vector<float>(sz(B * T * C), NAN), so),
      g_lse(std::vector<float>(sz(B * H * T), NAN), sl),
      g_att(std::vector<float>(save_p ? sz(B * H * T * T) : 1, NAN), save_p ? sa : Shape{1}),
      g_dout(dout, so), g_dqkv(std::vector<float>(sz(B * T * 3 * C), NAN), sq),
      g_scratch(std::vector<float>(sz(ss.numel()), NAN), ss);
  OnGpu<int32_t> g_mask(mask, sm);
  const Tensor gm = c.mask ? g_mask.t() : Tensor{}, ga = save_p ? g_att.t() : Tensor{};
  attention_forward(g_out.t(), g_lse.t(), ga, g_qkv.t(), gm, int(H), c.causal);
  attention_backward(g_dqkv.t(), g_scratch.t(), g_dout.t(), g_qkv.t(), g_out.t(), g_lse.t(), ga,
                     gm, int(H), c.causal);
  auto d_qkv = f64(qkv), d_dout = f64(dout);
  std::vector<double> out(sz(B * T * C)), lse(sz(B * H * T)), att(save_p ? sz(B * H * T * T) : 0),
      dqkv(sz(B * T * 3 * C)), scratch(sz(ss.numel()));
  const Tensor cm = c.mask ? view(mask, sm) : Tensor{}, ca = save_p ? view(att, sa) : Tensor{};
  attention_forward(view(out, so), view(lse, sl), ca, view(d_qkv, sq), cm, int(H), c.causal);
  attention_backward(view(dqkv, sq), view(scratch, ss), view(d_dout, so), view(d_qkv, sq),
                     view(out, so), view(lse, sl), ca, cm, int(H), c.causal);
  expect_close("out", g_out.get(), out);
  expect_lse(g_lse.get(), lse);
  if (save_p) expect_close("att (every entry: zeros where masked)", g_att.get(), att);
  expect_close("dqkv", g_dqkv.get(), dqkv);
}

TEST(GpuKernels, AttentionMatchesCpuWithCausalAndPaddingMasks) {
  LOOM_REQUIRE_GPU();
  std::mt19937 gen(13);
  for (bool save_p : {true, false}) {
    for (bool causal : {true, false})
      for (int mask : {0, 1, 2}) {
        check_attention({2, 13, 67, 1, causal, mask}, save_p, gen);   // D = 67: odd, 3 lanes' worth
        check_attention({3, 70, 64, 4, causal, mask}, save_p, gen);   // T past 2 key tiles, 9 query blocks
      }
    check_attention({1, 1, 8, 2, true, 0}, save_p, gen);
    check_attention({2, 33, 256, 2, true, 1}, save_p, gen);           // D = 128, the kernel's limit
    check_attention({2, 40, 96, 3, false, 1}, save_p, gen);           // D = 32
    check_attention({2, 100, 48, 3, true, 2}, save_p, gen);           // T past 3 query tiles of the kv walk
    std::uniform_int_distribution<int64_t> t_of(1, 90), h_of(1, 4), d_of(1, 80);
    for (int r = 0; r < 4; ++r) {
      const int64_t H = h_of(gen);
      check_attention({r % 3 + 1, t_of(gen), H * d_of(gen), H, r % 2 == 0, r % 3}, save_p, gen);
    }
  }
}

// GPT-2's head size at a longer T, lse only (the CUDA models' path): many key and query
// tiles per block.
TEST(GpuKernels, AttentionFromLseMatchesCpuAtGptHeadSize) {
  LOOM_REQUIRE_GPU();
  std::mt19937 gen(29);
  check_attention({2, 300, 128, 2, true, 0}, false, gen);
  check_attention({2, 257, 192, 3, false, 1}, false, gen);
}

TEST(GpuKernels, AttentionFullyMaskedQueriesGetZerosNotNaN) {
  LOOM_REQUIRE_GPU();
  const int64_t B = 2, T = 9, C = 16, H = 2;
  std::mt19937 gen(1);
  auto qkv = uniform(gen, B * T * 3 * C), dout = uniform(gen, B * T * C);
  std::vector<int32_t> mask(sz(B * T), 1);
  for (int64_t t = 0; t < T; ++t) mask[sz(T + t)] = 0;   // sequence 1: every key padded
  mask[0] = 0;                                           // sequence 0: key 0 padded
  OnGpu<float> g_qkv(qkv, {B, T, 3 * C}), g_out(std::vector<float>(sz(B * T * C), NAN), {B, T, C}),
      g_att(std::vector<float>(sz(B * H * T * T), NAN), {B, H, T, T}),
      g_lse(std::vector<float>(sz(B * H * T), NAN), {B, H, T}), g_dout(dout, {B, T, C}),
      g_dqkv(std::vector<float>(sz(B * T * 3 * C), NAN), {B, T, 3 * C}),
      g_rowdot(std::vector<float>(sz(B * H * T), NAN), {B, H, T});
  OnGpu<int32_t> g_mask(mask, {B, T});
  attention_forward(g_out.t(), g_lse.t(), g_att.t(), g_qkv.t(), g_mask.t(), int(H), /*causal=*/true);
  const auto out = g_out.get(), att = g_att.get(), lse = g_lse.get();
  for (int64_t h = 0; h < H; ++h) {   // sequence 0, query 0 sees only key 0, which is padded
    for (int64_t s = 0; s < T; ++s) EXPECT_EQ(att[sz((h * T) * T + s)], 0.0f) << "h " << h << " s " << s;
    EXPECT_EQ(lse[sz(h * T)], INFINITY) << "h " << h;
  }
  for (int64_t j = 0; j < C; ++j) EXPECT_EQ(out[sz(j)], 0.0f) << j;
  for (int64_t i = B * T * C / 2; i < B * T * C; ++i) ASSERT_EQ(out[sz(i)], 0.0f) << i;
  for (int64_t i = B * H * T * T / 2; i < B * H * T * T; ++i) ASSERT_EQ(att[sz(i)], 0.0f) << i;
  for (int64_t i = B * H * T / 2; i < B * H * T; ++i) ASSERT_EQ(lse[sz(i)], INFINITY) << i;
  for (float v : out) ASSERT_FALSE(std::isnan(v));
  // Sequence 0, query 1 sees key 1 only: probability 1, lse = its score.
  EXPECT_EQ(att[sz(1 * T + 1)], 1.0f);
  // Without att the backward gives the fully masked rows, and every key of sequence 1,
  // exact zeros; nothing is NaN.
  attention_backward(g_dqkv.t(), g_rowdot.t(), g_dout.t(), g_qkv.t(), g_out.t(), g_lse.t(),
                     Tensor{}, g_mask.t(), int(H), /*causal=*/true);
  const auto dqkv = g_dqkv.get();
  for (float v : dqkv) ASSERT_FALSE(std::isnan(v));
  for (int64_t i = B * T * 3 * C / 2; i < B * T * 3 * C; ++i) ASSERT_EQ(dqkv[sz(i)], 0.0f) << i;
  for (int64_t j = 0; j < C; ++j) EXPECT_EQ(dqkv[sz(j)], 0.0f) << "dq of query 0, " << j;
  for (int64_t j = C; j < 3 * C; ++j) EXPECT_EQ(dqkv[sz(j)], 0.0f) << "dk, dv of padded key 0, " << j;
}

TEST(GpuKernels, AttentionRefusesAHeadTooLargeForTheKernel) {
  LOOM_REQUIRE_GPU();
  const int64_t B = 1, T = 2, C = 130, H = 1;
  OnGpu<float> qkv(std::vector<float>(sz(B * T * 3 * C)), {B, T, 3 * C}), out(std::vector<float>(sz(B * T * C)), {B, T, C}),
      att(std::vector<float>(sz(B * H * T * T)), {B, H, T, T}), lse(std::vector<float>(sz(B * H * T)), {B, H, T});
  std::string m = error_of([&] { attention_forward(out.t(), lse.t(), att.t(), qkv.t(), Tensor{}, int(H), true); });
  EXPECT_NE(m.find("attention_forward: the head size D = C / n_head = 130 exceeds"), std::string::npos) << m;
  m = error_of([&] {
    attention_backward(qkv.t(), lse.t(), out.t(), qkv.t(), out.t(), lse.t(), Tensor{}, Tensor{}, int(H), true);
  });
  EXPECT_NE(m.find("attention_backward: the head size D = C / n_head = 130 exceeds"), std::string::npos) << m;
}

// ---- softmax cross-entropy, gather_rows ----------------------------------------------

TEST(GpuKernels, SoftmaxCrossEntropyMatchesCpuWithIgnoredRowsAndInPlaceBackward) {
  LOOM_REQUIRE_GPU();
  constexpr int kIgnore = -100;
  std::mt19937 gen(17);
  for (int64_t V : {1, 67, 1001, 50257}) {
    SCOPED_TRACE("V=" + std::to_string(V));
    const int64_t B = 3, T = 13, N = B * T;
    auto logits = uniform(gen, N * V, -8.0f, 8.0f);
    auto targets = ids(gen, N, int32_t(V));
    for (int64_t n = 0; n < N; n += 4) targets[sz(n)] = kIgnore;
    const Shape sl{B, T, V}, sr{B, T};
    const double scale = 1.0 / 29.0;
    OnGpu<float> g_logits(logits, sl), g_loss(std::vector<float>(sz(N), NAN), sr), g_lse(std::vector<float>(sz(N), NAN), sr);
    OnGpu<int32_t> g_t(targets, sr);
    softmax_cross_entropy_forward(g_loss.t(), g_lse.t(), g_logits.t(), g_t.t(), kIgnore);
    softmax_cross_entropy_backward(g_logits.t(), g_logits.t(), g_lse.t(), g_t.t(), kIgnore, scale);  // in place
    auto d_logits = f64(logits);
    std::vector<double> loss(sz(N)), lse(sz(N)), dlogits(sz(N * V));
    softmax_cross_entropy_forward(view(loss, sr), view(lse, sr), view(d_logits, sl), view(targets, sr), kIgnore);
    softmax_cross_entropy_backward(view(dlogits, sl), view(d_logits, sl), view(lse, sr), view(targets, sr), kIgnore, scale);
    expect_close("loss", g_loss.get(), loss);
    expect_close("lse", g_lse.get(), lse);
    expect_close("dlogits (in place of logits)", g_logits.get(), dlogits);
    const auto got_loss = g_loss.get();
    for (int64_t n = 0; n < N; n += 4) EXPECT_EQ(got_loss[sz(n)], 0.0f) << "ignored row " << n;
  }
}

TEST(GpuKernels, SoftmaxCrossEntropyBadTargetIsAnErrorNamingTheRow) {
  LOOM_REQUIRE_GPU();
  const int64_t N = 6, V = 5;
  std::vector<int32_t> targets = {0, -100, 4, 5, -1, 2};   // row 3 is the first bad one
  OnGpu<float> logits(std::vector<float>(sz(N * V), 0.5f), {N, V}), loss(std::vector<float>(sz(N), 9.0f), {N}),
      lse(std::vector<float>(sz(N), 9.0f), {N});
  OnGpu<int32_t> t(targets, {N});
  std::string m = error_of([&] { softmax_cross_entropy_forward(loss.t(), lse.t(), logits.t(), t.t(), -100); });
  EXPECT_NE(m.find("softmax_cross_entropy_forward: targets[3] = 5 is outside [0, 5) and is not ignore_index (-100)"), std::string::npos) << m;
  EXPECT_EQ(loss.get(), std::vector<float>(sz(N), 9.0f)) << "loss written despite a bad target";
  m = error_of([&] { softmax_cross_entropy_backward(logits.t(), logits.t(), lse.t(), t.t(), -100, 1.0); });
  EXPECT_NE(m.find("softmax_cross_entropy_backward: targets[3] = 5"), std::string::npos) << m;
  EXPECT_EQ(logits.get(), std::vector<float>(sz(N * V), 0.5f));
}

TEST(GpuKernels, GatherRowsMatchesCpuBitwiseWithEmptySlotsAndRepeats) {
  LOOM_REQUIRE_GPU();
  std::mt19937 gen(23);
  const int64_t B = 3, T = 13, C = 67, P = 6;
  const Shape sin{B, T, C}, sout{B, P, C}, sp{B, P};
  std::vector<int32_t> pos = {0, 5, 5, -1, 12, 3,  -1, -1, -1, -1, -1, -1,  7, 0, 7, 7, 1, 2};
  auto in = uniform(gen, B * T * C), dout = uniform(gen, B * P * C);
  OnGpu<float> g_in(in, sin), g_out(std::vector<float>(sz(B * P * C), NAN), sout), g_dout(dout, sout),
      g_din(std::vector<float>(sz(B * T * C), NAN), sin);
  OnGpu<int32_t> g_pos(pos, sp);
  gather_rows_forward(g_out.t(), g_in.t(), g_pos.t());
  gather_rows_backward(g_din.t(), g_dout.t(), g_pos.t());
  std::vector<float> out(sz(B * P * C)), din(sz(B * T * C));
  gather_rows_forward(view(out, sout), view(in, sin), view(pos, sp));
  gather_rows_backward(view(din, sin), view(dout, sout), view(pos, sp));
  EXPECT_TRUE(g_out.get() == out) << "gather differs from the CPU";
  EXPECT_TRUE(g_din.get() == din) << "scatter-add differs from the CPU's p-order sums";
  std::vector<int32_t> bad = pos;
  bad[sz(1 * P + 4)] = 13;
  bad[sz(2 * P + 1)] = -2;
  OnGpu<int32_t> g_bad(bad, sp);
  OnGpu<float> untouched(std::vector<float>(sz(B * P * C), 4.0f), sout);
  const std::string m = error_of([&] { gather_rows_forward(untouched.t(), g_in.t(), g_bad.t()); });
  EXPECT_NE(m.find("gather_rows_forward: positions[1, 4] = 13 is outside [0, 13)"), std::string::npos) << m;
  EXPECT_EQ(untouched.get(), std::vector<float>(sz(B * P * C), 4.0f));
}

// ---- what the CUDA side checks itself ----------------------------------------------

TEST(GpuKernels, F64AndHostMemoryOnTheGpuAreErrorsNamingKernelAndArgument) {
  LOOM_REQUIRE_GPU();
  OnGpu<float> a(std::vector<float>(12, 1.0f), {3, 4});
  Buffer d64(12 * sizeof(double), kGpu);
  const Tensor t64(d64.data(), {3, 4}, DType::kF64, kGpu);
  std::string m = error_of([&] { gelu_forward(t64, t64, GeluForm::kTanh); });
  EXPECT_NE(m.find("gelu_forward: out is f64 but the CUDA kernels take f32 only"), std::string::npos) << m;
  std::vector<float> host(12, 1.0f);
  m = error_of([&] { residual_forward(a.t(), a.t(), view(host, {3, 4}, kGpu)); });
  EXPECT_NE(m.find("residual_forward: the tensors are on cuda:0 but b's memory"), std::string::npos) << m;
  EXPECT_NE(m.find("host memory"), std::string::npos) << m;
  EXPECT_EQ(a.get(), std::vector<float>(12, 1.0f));
}

// Note [CUDA streams] in core/device.h: the kernels go to the current loom stream. Under
// stream capture nothing runs until the graph is launched, so out must still be zeros
// after the calls; a kernel sent to another stream (the legacy default one, which does not
// wait for a non-blocking stream) would have run at once. Relaxed capture mode: the
// host-side checks of each call (cudaPointerGetAttributes) are then allowed for sure.
TEST(GpuKernels, KernelsRunOnTheCurrentLoomStream) {
  LOOM_REQUIRE_GPU();
  const int64_t n = 1001;
  std::vector<float> a(sz(n), 1.5f), b(sz(n), 2.0f);
  OnGpu<float> g_a(a, {n}), g_b(b, {n}), g_out(std::vector<float>(sz(n), 0.0f), {n});
  cudaStream_t stream = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), cudaSuccess);
  set_cuda_current_stream(0, stream);
  EXPECT_EQ(cuda_current_stream(0), static_cast<void*>(stream));
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed), cudaSuccess);
  std::string m = error_of([&] {
    residual_forward(g_out.t(), g_a.t(), g_b.t());
    gelu_forward(g_out.t(), g_out.t(), GeluForm::kErf);
  });
  ASSERT_EQ(cudaStreamEndCapture(stream, &graph), cudaSuccess);
  set_cuda_current_stream(0, nullptr);
  EXPECT_EQ(m, "no error");
  EXPECT_EQ(g_out.get(), std::vector<float>(sz(n), 0.0f)) << "kernels ran outside the captured stream";
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  ASSERT_EQ(cudaGraphLaunch(exec, stream), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(stream), cudaSuccess);
  const double x = 3.5, want = x * 0.5 * (1.0 + std::erf(x / std::sqrt(2.0)));
  expect_close("gelu(a + b) through the captured graph", g_out.get(), std::vector<double>(sz(n), want));
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(graph);
  cudaStreamDestroy(stream);
}

// Runs where there is no GPU (CI): a CUDA build must refuse CUDA tensors with an error
// naming the kernel and the device, not crash (Note [CUDA kernel calls]).
TEST(GpuKernels, WithoutAGpuCudaTensorsAreAnErrorNamingKernelAndDevice) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is present: the comparisons above run instead";
  std::vector<float> x(12, 1.0f), loss(3);
  std::vector<int32_t> t(3, 0);
  const std::string m = error_of([&] { linear_forward(view(x, {3, 4}, kGpu), view(x, {3, 4}, kGpu), view(x, {4, 4}, kGpu), Tensor{}); });
  EXPECT_NE(m.find("linear_forward: the tensors are on cuda:0 but this process sees 0 CUDA device(s)"), std::string::npos) << m;
  const std::string m2 = error_of([&] { softmax_cross_entropy_forward(view(loss, {3}, kGpu), view(loss, {3}, kGpu), view(x, {3, 4}, kGpu), view(t, {3}, kGpu), -100); });
  EXPECT_NE(m2.find("softmax_cross_entropy_forward: the tensors are on cuda:0"), std::string::npos) << m2;
}

}  // namespace
}  // namespace loom::test
