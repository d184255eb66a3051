// loom's GPT export (launch/kinds/gpt_files.h, Note [GPT export layout]) loaded by Hugging
// Face transformers as a user would (tests/python/hf_load_gpt.py: strict
// GPT2LMHeadModel.from_pretrained, float32) gives loom's logits: with biases and without
// (exported as zeros), with a character tokenizer's files beside it. Skipped visibly
// without the .venv (scripts/setup.sh), a failure under CI.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "io/char_tokenizer.h"
#include "io/h5.h"
#include "io/safetensors.h"
#include "io/tokenizer.h"
#include "launch/kinds/gpt_files.h"
#include "tests/support/gpt_case.h"

namespace loom {
namespace {

using namespace loom::test;

TEST(GptExport, TheLayoutTransposesConv1DWeightsAndFillsMissingBiases) {
  TempDir dir;
  GptNet net(tiny_shape(false), 1, 5);
  randomize(net, 3);
  std::unique_ptr<Tokenizer> tok = make_tokenizer(CharTokenizer::from_text("abcdefghijk"));
  const std::vector<std::string> files = write_gpt_hf_export(net, *tok, dir.file("hf"));
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(std::filesystem::path(files[2]).filename(), "char_vocab.txt");
  SafetensorsReader st(dir.file("hf") + "/model.safetensors");
  EXPECT_EQ(st.metadata().at("format"), "pt");
  const SafetensorsEntry& w = st.entry("h.1.mlp.c_fc.weight");
  ASSERT_EQ(w.shape, (std::vector<int64_t>{8, 32}));   // [in, out] of a (32, 8) linear
  const std::vector<float> v = st.read_f32("h.1.mlp.c_fc.weight");
  Tensor mine = net.params().value("h.1.mlp.c_fc.weight");
  for (int64_t o = 0; o < 32; ++o)
    for (int64_t i = 0; i < 8; ++i) ASSERT_EQ(v[size_t(i * 32 + o)], mine.f32()[o * 8 + i]);
  const std::vector<float> b = st.read_f32("h.0.attn.c_attn.bias");
  EXPECT_EQ(b.size(), 24u);
  EXPECT_TRUE(std::all_of(b.begin(), b.end(), [](float x) { return x == 0.0f; }));
  EXPECT_FALSE(st.contains("lm_head.weight"));   // tied to wte
}

TEST(GptExport, HuggingFaceGpt2LoadsItAndGivesLoomsLogits) {
  LOOM_REQUIRE_PYTHON_REFERENCE();
  for (bool bias : {true, false}) {
    TempDir dir;
    GptShape s = tiny_shape(bias);
    GptNet net(s, 2, 7);
    randomize(net, bias ? 31 : 32);
    Batch batch = make_batch(2, 7, s.vocab_size, 4, false);
    loss_of(net, batch);
    std::unique_ptr<Tokenizer> tok = make_tokenizer(CharTokenizer::from_text("abcdefghijk"));
    write_gpt_hf_export(net, *tok, dir.file("hf"));
    write_case(dir.file("case.h5"), net, batch);
    RunResult r = run({std::getenv("LOOM_PYTHON"), std::getenv("LOOM_HF_LOAD_GPT"), dir.file("hf"),
                       dir.file("case.h5"), dir.file("out.h5")},
                      std::chrono::seconds(300));
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    h5::File out = h5::File::open(dir.file("out.h5"), false);
    h5::Dataset d = out.open_dataset("logits");
    std::vector<float> hf(size_t(d.numel()));
    d.read_elements(0, d.numel(), hf.data());
    Tensor mine = net.logits();
    ASSERT_EQ(int64_t(hf.size()), mine.numel());
    double worst = 0.0;
    for (int64_t k = 0; k < mine.numel(); ++k)
      worst = std::max(worst, double(std::abs(hf[size_t(k)] - mine.f32()[k])));
    EXPECT_LE(worst, 1e-4) << "bias=" << bias;
    std::printf("bias=%d: max |loom - transformers| logit difference %.3g\n", int(bias), worst);
  }
}

}  // namespace
}  // namespace loom
