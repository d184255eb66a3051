// GptNet (models/gpt/gpt_net.h): the whole network's gradient against central finite
// differences in double precision, float32 against float64, and logits, loss and every
// parameter's gradient against an independent implementation - Hugging Face's
// GPT2LMHeadModel in PyTorch float64 (tests/python/gpt_reference.py, run from the .venv
// scripts/setup.sh makes; skipped visibly without it, a failure under CI).
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "core/rng.h"
#include "io/h5.h"
#include "models/gpt/gpt_net.h"
#include "tests/support/gpt_case.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

using namespace loom::test;

TEST(GptNet, GradientMatchesFiniteDifferencesInDouble) {
  for (bool bias : {true, false}) {
    GptNet net(tiny_shape(bias), 2, 6, Device::cpu(), DType::kF64);
    randomize(net, 7);
    Batch b = make_batch(2, 6, 11, 3, /*with_ignored=*/true);
    const double scale = 1.0 / 10.0;   // the mean over the 10 counted targets
    loss_of(net, b);
    net.params().zero_grads();
    std::vector<int> order;
    net.backward(scale, [&](int p) { order.push_back(p); });
    // Every parameter is reported ready exactly once, wte last (the tied head and the
    // embedding both add to it).
    ASSERT_EQ(int(order.size()), net.params().size());
    EXPECT_EQ(net.params().entry(order.back()).name, "wte.weight");
    std::vector<int> sorted = order;
    std::sort(sorted.begin(), sorted.end());
    for (int i = 0; i < net.params().size(); ++i) ASSERT_EQ(sorted[size_t(i)], i);

    const double h = 1e-5;
    int checked = 0;
    for (int i = 0; i < net.params().size(); ++i) {
      Tensor w = net.params().value(i), g = net.params().grad(i);
      const int64_t n = w.numel();
      for (int64_t k : {int64_t(0), n / 3, n / 2, n - 1}) {
        const double saved = w.f64()[k];
        w.f64()[k] = saved + h;
        const double up = loss_of(net, b);
        w.f64()[k] = saved - h;
        const double down = loss_of(net, b);
        w.f64()[k] = saved;
        const double fd = scale * (up - down) / (2 * h);
        const double an = g.f64()[k];
        EXPECT_NEAR(an, fd, 1e-7 + 1e-6 * std::abs(fd))
            << net.params().entry(i).name << "[" << k << "] bias=" << bias;
        ++checked;
      }
    }
    EXPECT_GE(checked, 4 * net.params().size());
  }
}

TEST(GptNet, Float32AgreesWithFloat64) {
  GptNet n64(tiny_shape(true), 2, 6, Device::cpu(), DType::kF64);
  GptNet n32(tiny_shape(true), 2, 6, Device::cpu(), DType::kF32);
  randomize(n64, 11);
  randomize(n32, 11);
  Batch b = make_batch(2, 6, 11, 5, false);
  const double l64 = loss_of(n64, b), l32 = loss_of(n32, b);
  EXPECT_NEAR(l32, l64, 1e-5 * std::abs(l64));
  n64.params().zero_grads();
  n32.params().zero_grads();
  n64.backward(1.0 / 12);
  n32.backward(1.0 / 12);
  for (int i = 0; i < n64.params().size(); ++i) {
    Tensor g64 = n64.params().grad(i), g32 = n32.params().grad(i);
    double scale = 0.0;
    for (int64_t k = 0; k < g64.numel(); ++k) scale = std::max(scale, std::abs(value_at(g64, k)));
    for (int64_t k = 0; k < g64.numel(); ++k)
      ASSERT_NEAR(value_at(g32, k), value_at(g64, k), 1e-5 * scale + 1e-7)
          << n64.params().entry(i).name << "[" << k << "]";
  }
}

TEST(GptNet, InitialisationFollowsGpt2) {
  GptShape s = tiny_shape(true);
  s.n_layer = 3;
  s.d_model = 64;
  s.vocab_size = 300;
  GptNet net(s, 1, 7);
  net.init(42);
  auto stddev = [&](const std::string& name) {
    Tensor t = net.params().value(name);
    double sum = 0, sq = 0;
    for (int64_t k = 0; k < t.numel(); ++k) {
      sum += t.f32()[k];
      sq += double(t.f32()[k]) * t.f32()[k];
    }
    const double mean = sum / double(t.numel());
    return std::sqrt(sq / double(t.numel()) - mean * mean);
  };
  EXPECT_NEAR(stddev("wte.weight"), 0.02, 0.001);
  EXPECT_NEAR(stddev("h.0.attn.c_attn.weight"), 0.02, 0.001);
  EXPECT_NEAR(stddev("h.1.mlp.c_fc.weight"), 0.02, 0.001);
  EXPECT_NEAR(stddev("h.2.attn.c_proj.weight"), 0.02 / std::sqrt(6.0), 0.001);
  EXPECT_NEAR(stddev("h.0.mlp.c_proj.weight"), 0.02 / std::sqrt(6.0), 0.0005);
  EXPECT_EQ(net.params().value("h.1.ln_2.weight").f32()[5], 1.0f);
  EXPECT_EQ(net.params().value("h.1.attn.c_attn.bias").f32()[5], 0.0f);
  // The same seed gives the same parameters (every rank initialises alone).
  GptNet again(s, 1, 7);
  again.init(42);
  Tensor a = net.params().values(), b = again.params().values();
  ASSERT_EQ(0, std::memcmp(a.data(), b.data(), a.nbytes()));
  // Decay: linear weights only (embeddings on request).
  std::vector<uint8_t> mask = net.decay_mask(false);
  EXPECT_EQ(mask[size_t(net.params().index_of("h.0.attn.c_attn.weight"))], 1);
  EXPECT_EQ(mask[size_t(net.params().index_of("h.0.attn.c_attn.bias"))], 0);
  EXPECT_EQ(mask[size_t(net.params().index_of("h.0.ln_1.weight"))], 0);
  EXPECT_EQ(mask[size_t(net.params().index_of("wte.weight"))], 0);
  EXPECT_EQ(net.decay_mask(true)[size_t(net.params().index_of("wpe.weight"))], 1);
}

// ---- against Hugging Face GPT2LMHeadModel (PyTorch, float64) ------------------------------

TEST(GptNet, MatchesHuggingFaceGpt2InFloat64) {
  LOOM_REQUIRE_PYTHON_REFERENCE();
  test::TempDir dir;
  GptShape s = tiny_shape(true);
  s.vocab_size = 13;
  GptNet n64(s, 2, 7, Device::cpu(), DType::kF64);
  GptNet n32(s, 2, 7, Device::cpu(), DType::kF32);
  randomize(n64, 21);
  randomize(n32, 21);
  Batch b = make_batch(2, 7, 13, 9, /*with_ignored=*/true);
  write_case(dir.file("case.h5"), n64, b);
  test::RunResult r = test::run({std::getenv("LOOM_PYTHON"), std::getenv("LOOM_GPT_REFERENCE"),
                                 dir.file("case.h5"), dir.file("ref.h5")},
                                std::chrono::seconds(300));
  ASSERT_EQ(r.status, 0) << r.out << r.err;

  const int64_t counted = 12;   // 14 targets, 2 ignored
  const double l64 = loss_of(n64, b) / counted, l32 = loss_of(n32, b) / counted;
  h5::File ref = h5::File::open(dir.file("ref.h5"), false);
  auto read = [&](const std::string& name) {
    h5::Dataset d = ref.open_dataset(name);
    EXPECT_EQ(d.type_name(), "float64") << name;
    std::vector<double> out(size_t(d.numel()));
    d.read_elements(0, d.numel(), out.data());
    return out;
  };
  const double ref_loss = read("loss")[0];
  EXPECT_NEAR(l64, ref_loss, 1e-12 * std::abs(ref_loss));
  EXPECT_NEAR(l32, ref_loss, 1e-5 * std::abs(ref_loss));
  const std::vector<double> logits = read("logits");
  Tensor lg = n64.logits();
  ASSERT_EQ(int64_t(logits.size()), lg.numel());
  for (int64_t k = 0; k < lg.numel(); ++k)
    ASSERT_NEAR(lg.f64()[k], logits[size_t(k)], 1e-10 * (1 + std::abs(logits[size_t(k)]))) << k;

  n64.params().zero_grads();
  n64.backward(1.0 / counted);
  for (int i = 0; i < n64.params().size(); ++i) {
    const std::string& name = n64.params().entry(i).name;
    const std::vector<double> g = read("grad/" + name);
    Tensor mine = n64.params().grad(i);
    ASSERT_EQ(int64_t(g.size()), mine.numel()) << name;
    for (int64_t k = 0; k < mine.numel(); ++k)
      ASSERT_NEAR(mine.f64()[k], g[size_t(k)], 1e-5 * std::abs(g[size_t(k)]) + 1e-12) << name << "[" << k << "]";
  }
}

}  // namespace
}  // namespace loom
