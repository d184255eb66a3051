// BertNet (models/bert/bert_net.h): the whole network's gradient against central finite
// differences in double (padding, ignored MLM slots, an empty slot, an ignored NSP label),
// float32 against float64, the gathered MLM rows against all positions, HF's
// initialisation, and logits and every parameter's gradient against Hugging Face's
// BertForPreTraining in PyTorch float64 (tests/python/bert_reference.py, run from the .venv
// scripts/setup.sh makes; skipped visibly without it, a failure under CI).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "io/h5.h"
#include "models/bert/bert_net.h"
#include "tests/support/bert_case.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

using namespace loom::test;

// mlm_scale · Σ MLM + nsp_scale · Σ NSP of one forward.
double loss_of(BertNet& net, BertCase& c, double mlm_scale, double nsp_scale) {
  BertLosses l = net.forward(c.inputs());
  return mlm_scale * l.mlm_loss + nsp_scale * l.nsp_loss;
}

// Entries of parameter `name` to check: a spread of flat indices; for the word embeddings
// rows the batch uses and one only the tied decoder reaches, never the pad row (Note [HF's
// padding semantics]: its gradient is the decoder's part alone, not the loss's derivative;
// the comparison with Hugging Face checks it).
std::vector<int64_t> entries_to_check(const BertNet& net, const std::string& name, int64_t n,
                                      const BertCase& c) {
  if (name != "embeddings.word_embeddings.weight")
    return {0, n / 3, n / 2, n - 1};
  const int64_t C = net.shape().hidden;
  std::vector<int64_t> out;
  for (int32_t tok : {c.tokens[2], c.tokens[5], int32_t(net.shape().vocab_size - 1)})
    if (tok != net.shape().pad_id) out.push_back(int64_t{tok} * C + (tok % C));
  return out;
}

TEST(BertNet, GradientMatchesFiniteDifferencesInDouble) {
  const BertShape s = tiny_bert_shape();
  BertNet net(s, 3, 7, 4, Device::cpu(), DType::kF64);
  randomize(net, 7);
  BertCase c = make_bert_case(3, 7, 4, s, 11, /*all_positions=*/false);
  const double mlm_scale = 1.0 / double(c.mlm_counted()), nsp_scale = 1.0 / double(c.nsp_counted());
  ASSERT_GE(c.mlm_counted(), 2);
  ASSERT_EQ(c.nsp_counted(), 2);
  loss_of(net, c, mlm_scale, nsp_scale);
  net.params().zero_grads();
  std::vector<int> order;
  net.backward(mlm_scale, nsp_scale, [&](int p) { order.push_back(p); });
  // Every parameter reported ready exactly once, in exactly reverse declaration order (what
  // GradSync's buckets expect), the word embeddings last (the tied decoder and the lookup
  // both add to them).
  ASSERT_EQ(int(order.size()), net.params().size());
  EXPECT_EQ(net.params().entry(order.back()).name, "embeddings.word_embeddings.weight");
  for (int i = 0; i < net.params().size(); ++i)
    ASSERT_EQ(order[size_t(i)], net.params().size() - 1 - i) << "ready call " << i;

  const double h = 1e-5;
  int checked = 0;
  for (int i = 0; i < net.params().size(); ++i) {
    const std::string& name = net.params().entry(i).name;
    Tensor w = net.params().value(i), g = net.params().grad(i);
    for (int64_t k : entries_to_check(net, name, w.numel(), c)) {
      const double saved = w.f64()[k];
      w.f64()[k] = saved + h;
      const double up = loss_of(net, c, mlm_scale, nsp_scale);
      w.f64()[k] = saved - h;
      const double down = loss_of(net, c, mlm_scale, nsp_scale);
      w.f64()[k] = saved;
      const double fd = (up - down) / (2 * h);
      EXPECT_NEAR(g.f64()[k], fd, 1e-8 + 1e-6 * std::abs(fd)) << name << "[" << k << "]";
      ++checked;
    }
  }
  EXPECT_GE(checked, 4 * (net.params().size() - 1) + 2);
  // Position rows past T are never used: zero gradient.
  Tensor gp = net.params().grad("embeddings.position_embeddings.weight");
  for (int64_t k = 7 * s.hidden; k < gp.numel(); ++k) ASSERT_EQ(gp.f64()[k], 0.0) << k;
}

TEST(BertNet, BackwardAccumulatesAndCountsAccuracy) {
  const BertShape s = tiny_bert_shape();
  BertNet net(s, 3, 7, 4, Device::cpu(), DType::kF64);
  randomize(net, 3);
  BertCase c = make_bert_case(3, 7, 4, s, 5, false);
  BertLosses l = net.forward(c.inputs());
  EXPECT_EQ(l.mlm_count, c.mlm_counted());
  EXPECT_EQ(l.nsp_count, c.nsp_counted());
  // Accuracy by hand from the logits.
  Tensor lg = net.mlm_logits();
  int64_t correct = 0;
  for (int64_t n = 0; n < c.B * c.P; ++n) {
    if (c.labels[size_t(n)] < 0) continue;
    const double* row = lg.f64() + n * s.vocab_size;
    correct += std::max_element(row, row + s.vocab_size) - row == c.labels[size_t(n)];
  }
  EXPECT_EQ(l.mlm_correct, correct);
  EXPECT_LE(l.nsp_correct, l.nsp_count);
  net.params().zero_grads();
  net.backward(0.5, 0.25);
  std::vector<double> once(size_t(net.params().total_elements()));
  std::memcpy(once.data(), net.params().grads().data(), once.size() * sizeof(double));
  net.forward(c.inputs());
  net.backward(0.5, 0.25);
  const double* twice = net.params().grads().f64();
  for (size_t k = 0; k < once.size(); ++k)
    ASSERT_NEAR(twice[k], 2 * once[k], 1e-12 * (1 + std::abs(once[k]))) << k;
}

TEST(BertNet, Float32AgreesWithFloat64) {
  const BertShape s = tiny_bert_shape();
  BertNet n64(s, 3, 7, 4, Device::cpu(), DType::kF64);
  BertNet n32(s, 3, 7, 4, Device::cpu(), DType::kF32);
  randomize(n64, 11);
  randomize(n32, 11);
  BertCase c = make_bert_case(3, 7, 4, s, 5, false);
  BertLosses l64 = n64.forward(c.inputs()), l32 = n32.forward(c.inputs());
  EXPECT_NEAR(l32.mlm_loss, l64.mlm_loss, 1e-5 * std::abs(l64.mlm_loss));
  EXPECT_NEAR(l32.nsp_loss, l64.nsp_loss, 1e-5 * std::abs(l64.nsp_loss) + 1e-6);
  n64.params().zero_grads();
  n32.params().zero_grads();
  n64.backward(1.0 / 8, 1.0 / 2);
  n32.backward(1.0 / 8, 1.0 / 2);
  for (int i = 0; i < n64.params().size(); ++i) {
    Tensor g64 = n64.params().grad(i), g32 = n32.params().grad(i);
    double scale = 0.0;
    for (int64_t k = 0; k < g64.numel(); ++k) scale = std::max(scale, std::abs(g64.f64()[k]));
    for (int64_t k = 0; k < g64.numel(); ++k)
      ASSERT_NEAR(double(g32.f32()[k]), g64.f64()[k], 2e-5 * scale + 1e-7)
          << n64.params().entry(i).name << "[" << k << "]";
  }
}

// The head on P gathered rows equals the head on all T positions at those rows, and so do
// the gradients when the labels sit on the same positions.
TEST(BertNet, GatheredPositionsEqualAllPositions) {
  const BertShape s = tiny_bert_shape();
  BertNet some(s, 3, 7, 7, Device::cpu(), DType::kF64), all(s, 3, 7, 7, Device::cpu(), DType::kF64);
  randomize(some, 13);
  randomize(all, 13);
  BertCase c = make_bert_case(3, 7, 4, s, 17, false);
  BertCase full = make_bert_case(3, 7, 4, s, 17, true);
  full.nsp = c.nsp;   // drawn after the positions: the two cases' draws differ there
  std::fill(full.labels.begin(), full.labels.end(), -1);
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t p = 0; p < c.P; ++p) {
      const int32_t t = c.positions[size_t(b * c.P + p)];
      if (t >= 0) full.labels[size_t(b * c.T + t)] = c.labels[size_t(b * c.P + p)];
    }
  BertLosses ls = some.forward(c.inputs()), la = all.forward(full.inputs());
  EXPECT_NEAR(ls.mlm_loss, la.mlm_loss, 1e-12 * std::abs(la.mlm_loss));
  EXPECT_EQ(ls.mlm_count, la.mlm_count);
  EXPECT_EQ(ls.mlm_correct, la.mlm_correct);
  const int64_t V = s.vocab_size;
  Tensor lg_some = some.mlm_logits(), lg_all = all.mlm_logits();
  for (int64_t b = 0; b < c.B; ++b)
    for (int64_t p = 0; p < c.P; ++p) {
      const int32_t t = c.positions[size_t(b * c.P + p)];
      if (t < 0) continue;   // an empty slot: a zero row, no label
      for (int64_t v = 0; v < V; ++v)
        ASSERT_NEAR(lg_some.f64()[(b * c.P + p) * V + v], lg_all.f64()[(b * c.T + t) * V + v],
                    1e-13)
            << b << "," << p << "," << v;
    }
  some.params().zero_grads();
  all.params().zero_grads();
  some.backward(0.3, 0.7);
  all.backward(0.3, 0.7);
  const double* gs = some.params().grads().f64();
  const double* ga = all.params().grads().f64();
  for (int64_t k = 0; k < some.params().total_elements(); ++k)
    ASSERT_NEAR(gs[k], ga[k], 1e-12 * (1 + std::abs(ga[k]))) << k;
}

TEST(BertNet, InitialisationFollowsHuggingFace) {
  BertShape s = tiny_bert_shape();
  s.hidden = 64;
  s.intermediate = 128;
  s.vocab_size = 300;
  s.n_layer = 3;
  s.pad_id = 5;
  BertNet net(s, 1, 7, 2);
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
  for (const char* name : {"embeddings.word_embeddings.weight",
                           "embeddings.position_embeddings.weight",
                           "encoder.layer.0.attention.self.query.weight",
                           "encoder.layer.2.attention.self.value.weight",
                           "encoder.layer.1.intermediate.dense.weight",
                           "encoder.layer.2.output.dense.weight", "pooler.dense.weight",
                           "cls.predictions.transform.dense.weight"})
    EXPECT_NEAR(stddev(name), 0.02, 0.0015) << name;
  EXPECT_NEAR(stddev("cls.seq_relationship.weight"), 0.02, 0.006);
  Tensor word = net.params().value("embeddings.word_embeddings.weight");
  for (int64_t c = 0; c < s.hidden; ++c) ASSERT_EQ(word.f32()[5 * s.hidden + c], 0.0f) << c;
  EXPECT_NE(word.f32()[4 * s.hidden], 0.0f);
  for (const char* name : {"embeddings.LayerNorm.weight",
                           "encoder.layer.1.attention.output.LayerNorm.weight",
                           "cls.predictions.transform.LayerNorm.weight"})
    EXPECT_EQ(net.params().value(name).f32()[3], 1.0f) << name;
  for (const char* name : {"encoder.layer.1.attention.self.key.bias", "cls.predictions.bias",
                           "encoder.layer.0.output.LayerNorm.bias", "pooler.dense.bias"})
    EXPECT_EQ(net.params().value(name).f32()[3], 0.0f) << name;
  BertNet again(s, 1, 7, 2);
  again.init(42);
  Tensor a = net.params().values(), b = again.params().values();
  ASSERT_EQ(0, std::memcmp(a.data(), b.data(), a.nbytes()));
  // Decay: linear weights only (embeddings on request).
  std::vector<uint8_t> mask = net.decay_mask(false);
  auto at = [&](const std::vector<uint8_t>& m, const char* name) {
    return int(m[size_t(net.params().index_of(name))]);
  };
  EXPECT_EQ(at(mask, "encoder.layer.0.attention.self.key.weight"), 1);
  EXPECT_EQ(at(mask, "cls.seq_relationship.weight"), 1);
  EXPECT_EQ(at(mask, "encoder.layer.0.attention.self.key.bias"), 0);
  EXPECT_EQ(at(mask, "encoder.layer.0.output.LayerNorm.weight"), 0);
  EXPECT_EQ(at(mask, "cls.predictions.bias"), 0);
  EXPECT_EQ(at(mask, "embeddings.word_embeddings.weight"), 0);
  EXPECT_EQ(at(net.decay_mask(true), "embeddings.token_type_embeddings.weight"), 1);
  // The packed query/key/value: one (3C, C) run in the store.
  const ParamStore& p = net.params();
  const int q = p.index_of("encoder.layer.1.attention.self.query.weight");
  EXPECT_EQ(p.entry(q + 1).name, "encoder.layer.1.attention.self.key.weight");
  EXPECT_EQ(p.entry(q + 2).offset, p.entry(q).offset + 2 * s.hidden * s.hidden);
  EXPECT_EQ(p.entry(q + 3).offset % 16, 0);
}

// DESIGN.md's names (the original BERT's; checkpoints hold them), in declaration order, and
// parameter_layout gives the same list and count as a built net without allocating.
TEST(BertNet, ParameterNamesAreDesignMdsOriginalBertNames) {
  BertShape s;
  s.vocab_size = 11;
  s.hidden = 8;
  s.n_layer = 1;
  s.n_head = 2;
  s.intermediate = 12;
  s.max_position = 9;
  std::vector<std::string> want = {"embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight",
                                   "embeddings.token_type_embeddings.weight", "embeddings.LayerNorm.weight",
                                   "embeddings.LayerNorm.bias"};
  for (const char* rest : {"attention.self.query.weight", "attention.self.key.weight", "attention.self.value.weight",
                           "attention.self.query.bias", "attention.self.key.bias", "attention.self.value.bias",
                           "attention.output.dense.weight", "attention.output.dense.bias",
                           "attention.output.LayerNorm.weight", "attention.output.LayerNorm.bias",
                           "intermediate.dense.weight", "intermediate.dense.bias", "output.dense.weight",
                           "output.dense.bias", "output.LayerNorm.weight", "output.LayerNorm.bias"})
    want.push_back(std::string("encoder.layer.0.") + rest);
  for (const char* name : {"cls.predictions.transform.dense.weight", "cls.predictions.transform.dense.bias",
                           "cls.predictions.transform.LayerNorm.weight", "cls.predictions.transform.LayerNorm.bias",
                           "cls.predictions.bias", "pooler.dense.weight", "pooler.dense.bias",
                           "cls.seq_relationship.weight", "cls.seq_relationship.bias"})
    want.push_back(name);
  BertNet net(s, 1, 4, 2);
  const ParamStore layout = BertNet::parameter_layout(s);
  EXPECT_FALSE(layout.finalized());
  ASSERT_EQ(net.params().size(), int(want.size()));
  ASSERT_EQ(layout.size(), int(want.size()));
  for (int i = 0; i < net.params().size(); ++i) {
    EXPECT_EQ(net.params().entry(i).name, want[size_t(i)]) << "parameter " << i;
    EXPECT_EQ(layout.entry(i).name, want[size_t(i)]) << "parameter " << i;
    EXPECT_EQ(layout.entry(i).numel, net.params().entry(i).numel) << want[size_t(i)];
  }
  // V·C + P·C + 2·C + 2·C, the block 4·C² + 4·C + 2·C·I + I + C + 4·C, the heads C² + C + 2·C + V,
  // the pooler C² + C, NSP 2·C + 2.
  const int64_t C = 8, V = 11, P = 9, I = 12;
  const int64_t count = V * C + P * C + 2 * C + 2 * C + 4 * C * C + 4 * C + 2 * C * I + I + C + 4 * C +
                        C * C + C + 2 * C + V + C * C + C + 2 * C + 2;
  EXPECT_EQ(net.params().parameter_count(), count);
  EXPECT_EQ(layout.parameter_count(), count);
}

TEST(BertNet, RefusesBadInputsNamingThem) {
  const BertShape s = tiny_bert_shape();
  BertNet net(s, 3, 7, 4, Device::cpu(), DType::kF32);
  BertCase c = make_bert_case(3, 7, 4, s, 5, false);
  c.positions[5] = 7;
  std::string m;
  try {
    net.forward(c.inputs());
  } catch (const Error& e) {
    m = e.what();
  }
  EXPECT_NE(m.find("positions[1, 1] = 7 is outside [0, 7)"), std::string::npos) << m;
  c = make_bert_case(3, 7, 4, s, 5, false);
  c.labels[2] = 13;
  m.clear();
  try {
    net.forward(c.inputs());
  } catch (const Error& e) {
    m = e.what();
  }
  EXPECT_NE(m.find("softmax_cross_entropy_forward"), std::string::npos) << m;
  c = make_bert_case(3, 7, 4, s, 5, false);
  c.labels.back() = 4;   // the last slot is empty
  m.clear();
  try {
    net.forward(c.inputs());
  } catch (const Error& e) {
    m = e.what();
  }
  EXPECT_NE(m.find("mlm slot [2, 3] is empty (position -1) but has label 4"), std::string::npos)
      << m;
}

TEST(BertNet, KeyMaskFromLengths) {
  std::vector<int32_t> lengths = {3, 1, 4}, mask(12, 7);
  Tensor mask_t(mask.data(), {3, 4}, DType::kI32), lengths_t(lengths.data(), {3}, DType::kI32);
  fill_key_mask(mask_t, lengths_t);
  EXPECT_EQ(mask, (std::vector<int32_t>{1, 1, 1, 0, 1, 0, 0, 0, 1, 1, 1, 1}));
  lengths[1] = 5;
  std::string m;
  try {
    fill_key_mask(mask_t, lengths_t);
  } catch (const Error& e) {
    m = e.what();
  }
  EXPECT_NE(m.find("fill_key_mask: lengths[1] = 5 is outside [1, 4]"), std::string::npos) << m;
}

// ---- against Hugging Face BertForPreTraining (PyTorch, float64) --------------------------

TEST(BertNet, MatchesHuggingFaceBertForPreTrainingInFloat64) {
  LOOM_REQUIRE_BERT_REFERENCE();
  const BertShape s = tiny_bert_shape();
  // all_positions: P = T, the path that gives every position's logits; else P < T with an
  // empty slot.
  for (bool all_positions : {true, false}) {
    SCOPED_TRACE(all_positions ? "P = T, every position" : "P < T, gathered positions");
    test::TempDir dir;
    BertNet n64(s, 3, 7, 7, Device::cpu(), DType::kF64);
    BertNet n32(s, 3, 7, 7, Device::cpu(), DType::kF32);
    randomize(n64, 21);
    randomize(n32, 21);
    BertCase c = make_bert_case(3, 7, 4, s, 9, all_positions);
    write_bert_case(dir.file("case.h5"), n64, c);
    test::RunResult r = test::run({std::getenv("LOOM_PYTHON"), std::getenv("LOOM_BERT_REFERENCE"),
                                   dir.file("case.h5"), dir.file("ref.h5")},
                                  std::chrono::seconds(300));
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    h5::File ref = h5::File::open(dir.file("ref.h5"), false);
    auto read = [&](const std::string& name) {
      h5::Dataset d = ref.open_dataset(name);
      EXPECT_EQ(d.type_name(), "float64") << name;
      std::vector<double> out(size_t(d.numel()));
      d.read_elements(0, d.numel(), out.data());
      return out;
    };
    const double mlm_n = double(c.mlm_counted()), nsp_n = double(c.nsp_counted());
    BertLosses l64 = n64.forward(c.inputs());
    BertLosses l32 = n32.forward(c.inputs());
    const double ref_loss = read("loss")[0];
    EXPECT_NEAR(l64.mlm_loss / mlm_n, read("mlm_loss")[0], 1e-12 * std::abs(ref_loss));
    EXPECT_NEAR(l64.nsp_loss / nsp_n, read("nsp_loss")[0], 1e-12 * std::abs(ref_loss));
    EXPECT_NEAR(l32.mlm_loss / mlm_n + l32.nsp_loss / nsp_n, ref_loss, 1e-5 * std::abs(ref_loss));
    for (const auto& [name, mine] : {std::pair{std::string("mlm_logits"), n64.mlm_logits()},
                                     std::pair{std::string("nsp_logits"), n64.nsp_logits()}}) {
      const std::vector<double> want = read(name);
      ASSERT_EQ(int64_t(want.size()), mine.numel()) << name;
      for (int64_t k = 0; k < mine.numel(); ++k) {
        const bool empty_slot = name == "mlm_logits" && c.positions[size_t(k / s.vocab_size)] < 0;
        if (empty_slot) continue;   // HF has no row there (the reference writes zeros)
        ASSERT_NEAR(mine.f64()[k], want[size_t(k)], 1e-10 * (1 + std::abs(want[size_t(k)])))
            << name << "[" << k << "]";
      }
    }
    n64.params().zero_grads();
    n64.backward(1.0 / mlm_n, 1.0 / nsp_n);
    // Relative per element, with an absolute floor at 1e-12 of the largest gradient: the
    // key bias's gradient is zero in exact arithmetic (softmax ignores a shift shared by
    // all keys), so both sides hold rounding noise around 1e-17 there.
    double largest = 0.0, worst = 0.0;
    for (int i = 0; i < n64.params().size(); ++i)
      for (double v : read("grad/" + n64.params().entry(i).name))
        largest = std::max(largest, std::abs(v));
    for (int i = 0; i < n64.params().size(); ++i) {
      const std::string& name = n64.params().entry(i).name;
      const std::vector<double> g = read("grad/" + name);
      Tensor mine = n64.params().grad(i);
      ASSERT_EQ(int64_t(g.size()), mine.numel()) << name;
      double scale = 0.0;
      for (double v : g) scale = std::max(scale, std::abs(v));
      const bool noise = name.find("attention.self.key.bias") != std::string::npos;
      if (!noise) {
        ASSERT_GT(scale, 1e-6 * largest) << name << ": Hugging Face's gradient is (almost) zero";
      }
      for (int64_t k = 0; k < mine.numel(); ++k) {
        const double e = g[size_t(k)], a = mine.f64()[k];
        if (!noise) worst = std::max(worst, std::abs(a - e) / scale);
        ASSERT_NEAR(a, e, 1e-5 * std::abs(e) + 1e-12 * largest) << name << "[" << k << "]";
      }
    }
    std::printf("BertNet vs HF BertForPreTraining (float64, %s): largest gradient difference "
                "relative to its tensor's largest entry %.2e (key biases aside)\n",
                all_positions ? "P = T" : "P < T", worst);
  }
}

}  // namespace
}  // namespace loom
