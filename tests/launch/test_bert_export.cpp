// loom's BERT export (launch/kinds/bert_files.h, Note [BERT export layout]) loaded by Hugging
// Face transformers as a user would (tests/python/hf_load_bert.py: strict
// BertForPreTraining.from_pretrained, float32; only the tied decoder keys may be absent):
// a tiny BERT trained by `loom train` on a generated corpus, both RUN_DIR/hf and the
// directory `loom export` writes from the checkpoint give, on a padded batch of two
// segments, loom's MLM logits at every position and its NSP logits within 1e-4; and
// BertTokenizerFast built from the same directory encodes text to loom's WordPiece ids. The
// checkpoint names its parameters as DESIGN.md (embeddings..., encoder.layer.<i>...,
// pooler..., cls...), the export as BertForPreTraining ("bert." before the first three),
// and hf_load_bert.py checks the file's keys are the model's state_dict keys exactly.
// Skipped visibly without the .venv (scripts/setup.sh), a failure under CI.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "io/checkpoint.h"
#include "io/h5.h"
#include "io/safetensors.h"
#include "io/tokenizer.h"
#include "launch/config/config.h"
#include "launch/kinds/bert.h"
#include "launch/kinds/bert_files.h"
#include "launch/kinds/gpt_files.h"
#include "models/bert/bert_net.h"
#include "tests/support/bert_e2e.h"
#include "tests/support/checkpoint_state.h"
#include "tests/support/gpt_case.h"

namespace loom {
namespace {

using namespace loom::test;
using namespace std::chrono_literals;

// Corpus words, words split into pieces ("bridges", "castles"), a character the corpus
// lacks ("z": [UNK]) and punctuation.
constexpr const char* kText =
    "The famous castle finds the quiet farmer. The young doctor reads the old letter; "
    "Zebras cross bridges, castles!";

std::vector<float> read_all(const h5::File& f, const std::string& name) {
  h5::Dataset d = f.open_dataset(name);
  std::vector<float> v(size_t(d.numel()));
  d.read_elements(0, d.numel(), v.data());
  return v;
}

TEST(BertExport, HuggingFaceBertForPreTrainingLoadsItAndGivesLoomsLogits) {
  LOOM_REQUIRE_PYTHON_REFERENCE();
  const char* hf_load = std::getenv("LOOM_HF_LOAD_BERT");
  ASSERT_NE(hf_load, nullptr) << "LOOM_HF_LOAD_BERT is not set (run through ctest)";
  TempDir dir;
  write_file(dir.file("docs.txt"), make_bert_documents(60 * 1000, 23));
  const std::string vocab = train_wordpiece(dir.file("docs.txt"), dir.file("voc"));
  ASSERT_FALSE(vocab.empty());
  write_file(dir.file("bert.toml"), bert_tiny_config(10, 0));
  const std::string run_dir = dir.file("run");
  RunResult trained = run(loom_cmd(1, {"train", dir.file("bert.toml"), "--set", "run.dir=" + run_dir, "--set",
                                      "corpus.paths=[\"" + dir.file("docs.txt") + "\"]", "--set", "tokens.vocab=" + vocab}),
                    300s);
  ASSERT_EQ(trained.status, 0) << trained.out << trained.err;
  RunResult e = run(loom_cmd(1, {"export", run_dir + "/checkpoints", "--format", "safetensors", "--out",
                                      dir.file("exported")}),
                    120s);
  ASSERT_EQ(e.status, 0) << e.out << e.err;

  // loom's side: the checkpoint into a BertNet, the run's tokenizer.
  CheckpointReader reader;
  reader.open(final_checkpoint(run_dir));
  const Config config = load_config_text(reader.meta().config_toml, reader.path(), {});
  std::unique_ptr<Tokenizer> tok = load_run_tokenizer(config, run_dir + "/tokenizer");
  const BertSpecialIds special = bert_special_ids(*tok);
  const BertOptions o = bert_options(config, int(tok->vocab_size()), special.pad);
  constexpr int64_t B = 3, T = 20;
  BertNet net(o.shape, B, T, T);
  reader.read_model_into(net.params());

  // The checkpoint holds DESIGN.md's names (the original BERT's, no "bert." prefix); the
  // export holds every parameter under BertForPreTraining's name (bert_hf_name), with the
  // checkpoint's values.
  {
    h5::File ck = h5::File::open(reader.path(), false);
    const h5::Group model = ck.open_group("model");
    for (const char* name : {"embeddings.word_embeddings.weight", "encoder.layer.0.attention.self.query.weight",
                             "encoder.layer.1.output.LayerNorm.bias", "pooler.dense.weight",
                             "cls.predictions.transform.dense.weight", "cls.predictions.bias",
                             "cls.seq_relationship.weight"})
      EXPECT_TRUE(model.has(name)) << reader.path() << " lacks /model/" << name;
    EXPECT_FALSE(model.has("bert.embeddings.word_embeddings.weight")) << reader.path();
    EXPECT_EQ(bert_hf_name("encoder.layer.3.output.dense.bias"), "bert.encoder.layer.3.output.dense.bias");
    EXPECT_EQ(bert_hf_name("cls.predictions.bias"), "cls.predictions.bias");
    for (const std::string& hf_dir : {run_dir + "/hf", dir.file("exported")}) {
      const SafetensorsReader st(hf_dir + "/model.safetensors");
      ASSERT_EQ(int64_t(st.entries().size()), int64_t(net.params().size())) << hf_dir;
      for (int i = 0; i < net.params().size(); ++i) {
        const std::string& name = net.params().entry(i).name;
        const std::string hf = (name.starts_with("cls.") ? "" : "bert.") + name;
        ASSERT_TRUE(st.contains(hf)) << hf_dir << " lacks " << hf;
        const std::vector<float> v = st.read_f32(hf);
        const Tensor t = net.params().value(i);
        ASSERT_EQ(int64_t(v.size()), t.numel()) << hf;
        EXPECT_TRUE(std::equal(v.begin(), v.end(), t.f32())) << hf_dir << ": " << hf << " differs from the checkpoint";
      }
    }
  }

  // A batch as the examples look: [CLS] A [SEP] B [SEP], segments 0 then 1, the last two
  // sequences padded (key mask 0, [PAD] tokens), one [MASK] in each; every position predicted.
  const std::vector<uint32_t> words = tok->encode(kText);
  ASSERT_GE(words.size(), size_t(8));
  std::vector<int32_t> tokens, segments, key_mask, positions;
  for (int64_t b = 0; b < B; ++b) {
    const int64_t len = T - 3 * b, split = len / 2;
    for (int64_t t = 0; t < T; ++t) {
      int32_t id = int32_t(words[size_t((t + 5 * b) % int64_t(words.size()))]);
      if (t == 0) id = int32_t(special.cls);
      if (t == split || t == len - 1) id = int32_t(special.sep);
      if (t == 3 + b) id = int32_t(special.mask);
      if (t >= len) id = special.pad;
      tokens.push_back(id);
      segments.push_back(t > split && t < len ? 1 : 0);
      key_mask.push_back(t < len ? 1 : 0);
      positions.push_back(int32_t(t));
    }
  }
  BertInputs in;
  in.tokens = Tensor(tokens.data(), {B, T}, DType::kI32);
  in.segments = Tensor(segments.data(), {B, T}, DType::kI32);
  in.key_mask = Tensor(key_mask.data(), {B, T}, DType::kI32);
  in.mlm_positions = Tensor(positions.data(), {B, T}, DType::kI32);
  net.forward(in);
  const Tensor mlm = net.mlm_logits(), nsp = net.nsp_logits();   // (B·T, V), (B, 2)
  ASSERT_EQ(mlm.numel(), B * T * int64_t(tok->vocab_size()));
  ASSERT_EQ(nsp.numel(), B * 2);

  {
    h5::File f = h5::File::create(dir.file("case.h5"));
    f.set_attr("text", std::string(kText));
    h5::Group batch = f.create_group("batch");
    auto put = [&](const char* name, const std::vector<int32_t>& v) {
      std::vector<int64_t> w(v.begin(), v.end());
      batch.create_dataset(name, h5::ElemType::kI64, {B, T}).write_rows(0, B, w.data());
    };
    put("tokens", tokens);
    put("segments", segments);
    put("key_mask", key_mask);
    f.close();
  }
  for (const std::string& hf_dir : {run_dir + "/hf", dir.file("exported")}) {
    RunResult r = run({std::getenv("LOOM_PYTHON"), hf_load, hf_dir, dir.file("case.h5"), dir.file("out.h5")}, 300s);
    ASSERT_EQ(r.status, 0) << r.out << r.err;
    std::printf("%s", r.out.c_str());
    h5::File out = h5::File::open(dir.file("out.h5"), false);
    const std::vector<float> hf_mlm = read_all(out, "mlm_logits"), hf_nsp = read_all(out, "nsp_logits");
    ASSERT_EQ(int64_t(hf_mlm.size()), mlm.numel()) << hf_dir;
    ASSERT_EQ(int64_t(hf_nsp.size()), nsp.numel()) << hf_dir;
    double worst_mlm = 0.0, worst_nsp = 0.0, spread = 0.0;
    for (int64_t k = 0; k < mlm.numel(); ++k) {
      worst_mlm = std::max(worst_mlm, double(std::abs(hf_mlm[size_t(k)] - mlm.f32()[k])));
      spread = std::max(spread, double(std::abs(mlm.f32()[k] - mlm.f32()[k % int64_t(tok->vocab_size())])));
    }
    for (int64_t k = 0; k < nsp.numel(); ++k)
      worst_nsp = std::max(worst_nsp, double(std::abs(hf_nsp[size_t(k)] - nsp.f32()[k])));
    std::printf("%s: max |loom - transformers| MLM logit %.3g, NSP logit %.3g (MLM logits spread %.3g)\n",
                hf_dir.c_str(), worst_mlm, worst_nsp, spread);
    EXPECT_LE(worst_mlm, 1e-4) << hf_dir;
    EXPECT_LE(worst_nsp, 1e-4) << hf_dir;
    EXPECT_GT(spread, 1e-2) << "the logits do not depend on the input: the comparison would mean nothing";

    h5::Dataset d = out.open_dataset("token_ids");
    std::vector<int64_t> hf_ids(size_t(d.numel()));
    d.read_elements(0, d.numel(), hf_ids.data());
    EXPECT_EQ(std::vector<uint32_t>(hf_ids.begin(), hf_ids.end()), words) << hf_dir;
  }
}

}  // namespace
}  // namespace loom
