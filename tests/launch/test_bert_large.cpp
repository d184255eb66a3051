// BERT-large's shape through loom's config: [bert] with 24 layers, hidden 1024, 16 heads,
// intermediate 4096, 512 positions (seq_len 512, 80 predictions as the original's second
// phase) and a 30522-token vocabulary passes check_bert_section and maps onto that
// BertShape; the BertNet of that shape declares exactly the parameters of Hugging Face's
// BertForPreTraining (tests/python/hf_bert_layout.py, built on torch's meta device): the
// same names (bert_hf_name of loom's), the same shapes, the same count (336,226,108 with
// transformers 4.46). Neither side allocates the 1.3 GB of values: loom counts with
// BertNet::parameter_layout. Skipped visibly without the .venv, a failure under CI.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "core/param_store.h"
#include "launch/config/config.h"
#include "launch/kinds/bert.h"
#include "launch/kinds/bert_files.h"
#include "models/bert/bert_net.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

using namespace loom::test;
using namespace std::chrono_literals;

constexpr int kVocab = 30522;

Config bert_large_config() {
  return load_config_text(
      "[train]\nmodel = \"bert\"\n[tokens]\ntokenizer = \"wordpiece\"\n"
      "[bert]\nn_layer = 24\nhidden = 1024\nn_head = 16\nintermediate = 4096\nmax_position = 512\n"
      "seq_len = 512\nmax_predictions = 80\nbatch_size = 256\noptimizer = \"lamb\"\n",
      "bert-large.toml", {});
}

TEST(BertLarge, ConfigGivesBertLargeShape) {
  const Config config = bert_large_config();
  EXPECT_NO_THROW(check_bert_section(config));
  const BertOptions o = bert_options(config, kVocab, 0);
  EXPECT_EQ(o.shape.n_layer, 24);
  EXPECT_EQ(o.shape.hidden, 1024);
  EXPECT_EQ(o.shape.n_head, 16);
  EXPECT_EQ(o.shape.intermediate, 4096);
  EXPECT_EQ(o.shape.max_position, 512);
  EXPECT_EQ(o.shape.vocab_size, kVocab);
  EXPECT_EQ(o.seq_len, 512);
  EXPECT_EQ(o.optimizer, BertOptimizerKind::kLamb);
  // intermediate = 0 is 4 x hidden: BERT-large's 4096 again.
  const Config implied = load_config_text(config_to_toml(config), "bert-large.toml", {"bert.intermediate=0"});
  EXPECT_EQ(bert_options(implied, kVocab, 0).shape.intermediate, 4096);
}

// "" when the .venv can run hf_bert_layout.py, else why not.
std::string reference_unavailable() {
  const char* py = std::getenv("LOOM_PYTHON");
  const char* tool = std::getenv("LOOM_HF_BERT_LAYOUT");
  if (!py || !tool) return "LOOM_PYTHON / LOOM_HF_BERT_LAYOUT are not set (run through ctest)";
  if (::access(py, X_OK) != 0) return std::string(py) + " is missing: run scripts/setup.sh";
  RunResult r = run({py, "-c", "import torch, transformers"}, 300s);
  if (r.status != 0) return "the .venv cannot import torch and transformers: " + r.err;
  return "";
}

TEST(BertLarge, ParametersEqualHuggingFaceBertForPreTraining) {
  const std::string why = reference_unavailable();
  if (!why.empty()) LOOM_SKIP_OR_FAIL("PyTorch / transformers reference unavailable: " + why);
  const char* tool = std::getenv("LOOM_HF_BERT_LAYOUT");
  const BertShape shape = bert_options(bert_large_config(), kVocab, 0).shape;
  const ParamStore layout = BertNet::parameter_layout(shape);
  EXPECT_FALSE(layout.finalized()) << "parameter_layout allocated the parameters";

  TempDir dir;
  RunResult r = run({std::getenv("LOOM_PYTHON"), tool, dir.file("hf.json"), "--vocab-size", std::to_string(kVocab),
                     "--hidden", "1024", "--layers", "24", "--heads", "16", "--intermediate", "4096",
                     "--max-position", "512"},
                    300s);
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  std::printf("%s", r.out.c_str());
  const nlohmann::json hf = nlohmann::json::parse(read_file(dir.file("hf.json")));
  const auto hf_params = hf.at("params").get<std::map<std::string, std::vector<int64_t>>>();

  std::map<std::string, std::vector<int64_t>> loom_params;
  for (const ParamStore::Entry& e : layout.entries()) {
    std::vector<int64_t> dims;
    for (int k = 0; k < e.shape.rank(); ++k) dims.push_back(e.shape[k]);
    loom_params[bert_hf_name(e.name)] = dims;
  }
  for (const auto& [name, dims] : hf_params) {
    auto it = loom_params.find(name);
    if (it == loom_params.end()) {
      ADD_FAILURE() << "loom's BERT-large lacks HF's " << name;
    } else {
      EXPECT_EQ(it->second, dims) << name;
    }
  }
  for (const auto& [name, dims] : loom_params)
    EXPECT_TRUE(hf_params.contains(name)) << "loom declares " << name << ", which BertForPreTraining does not have";
  const int64_t hf_count = hf.at("count").get<int64_t>();
  std::printf("BERT-large: loom %lld parameters in %d tensors, BertForPreTraining %lld in %zu\n",
              static_cast<long long>(layout.parameter_count()), layout.size(), static_cast<long long>(hf_count),
              hf_params.size());
  EXPECT_EQ(layout.parameter_count(), hf_count);
  EXPECT_GT(hf_count, 330'000'000) << "not BERT-large";
}

}  // namespace
}  // namespace loom
