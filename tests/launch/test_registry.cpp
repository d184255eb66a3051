// The model registry end to end: a model kind defined only in this file - its config
// section, its recipe, its export - trains through `loom train`'s own pipeline
// (run_train_pipeline) with the Trainer's epoch hook, checkpoints and eval.json, and the
// config loader, --describe and did-you-mean know it. Nothing in launch/ names it: this is
// what "adding a model is one folder plus one registration" promises.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <memory>

#include "core/error.h"
#include "core/param_store.h"
#include "dist/mpi_communicator.h"
#include "io/checkpoint.h"
#include "launch/config/config.h"
#include "launch/pipeline/model_registry.h"
#include "launch/pipeline/pipeline.h"
#include "launch/pipeline/run_report.h"
#include "launch/run/session.h"
#include "models/model.h"
#include "tests/support/test_support.h"

namespace loom {

#define LOOM_CONFIG_TOY(X_BOOL, X_INT, X_REAL, X_STR, X_ENUM, X_LIST)                   \
  X_INT(steps, 6, ConfigRange::at_least(1), "steps of the toy model")                   \
  X_INT(steps_per_epoch, 3, ConfigRange::at_least(1), "steps per epoch")                \
  X_REAL(lr, 0.25, ConfigRange::above(0), "gradient step on 0.5 (w - 1)^2")
LOOM_MODEL_SECTION(toy, ToySection, LOOM_CONFIG_TOY)
LOOM_REGISTER_MODEL_SECTION(ToySection, LOOM_CONFIG_TOY, "a test model kind");

namespace {

// w (4) descends 0.5 * |w - 1|^2 from 0: after s steps of rate lr, w_i = 1 - (1 - lr)^s.
class ToyModel final : public Model {
 public:
  explicit ToyModel(const ToySection& s) : options_(s) {
    params_.declare("w", {4});
    params_.finalize();
  }
  std::string_view kind() const override { return "toy"; }
  ParamStore& params() override { return params_; }
  int64_t total_steps() const override { return options_.steps; }
  int64_t steps_per_epoch() const override { return options_.steps_per_epoch; }
  int64_t epoch() const override { return done_ / options_.steps_per_epoch; }
  int64_t epoch_step() const override { return done_ % options_.steps_per_epoch; }
  std::string_view item_unit() const override { return "toys"; }
  StepStats train_step(const StepContext&) override {
    float* w = params_.value(0).f32();
    StepStats stats;
    for (int i = 0; i < 4; ++i) {
      stats.loss_sum += 0.5 * double(w[i] - 1) * double(w[i] - 1);
      w[i] -= float(options_.lr) * (w[i] - 1.0f);
    }
    stats.examples = 1;
    stats.items = 1;
    ++done_;
    return stats;
  }
  std::vector<OptimizerSlot> optimizer_slots() override { return {}; }
  std::vector<RankState> rank_state() const override { return {{"data", {uint64_t(done_)}}}; }
  std::optional<VocabView> vocab() const override { return std::nullopt; }
  int64_t tokens_seen() const override { return done_; }
  void restore(const CheckpointReader& reader, int64_t) override { done_ = int64_t(reader.read_state("data")[0]); }
  bool checkpoint_ready(int64_t) const override { return true; }
  std::vector<std::string> shape_keys() const override { return {"toy.steps_per_epoch"}; }

 private:
  ToySection options_;
  ParamStore params_;
  int64_t done_ = 0;
};

class ToyRecipe final : public ModelRecipe {
 public:
  explicit ToyRecipe(const Session& session) : run_dir_(session.run_dir()) {}
  std::unique_ptr<Model> build(PipelineContext& ctx) override {
    ctx.report.add_stage("toy_data", 0.5, true);
    return std::make_unique<ToyModel>(ctx.session.config().models.get<ToySection>());
  }
  Evaluation evaluate(const Model& model, bool final) override {
    const float w0 = const_cast<Model&>(model).params().value(0).f32()[0];
    Evaluation e;
    if (final) {
      e.json = nlohmann::json{{"toy_w0", w0}}.dump();
    } else {
      e.note = ", toy w0 " + std::to_string(w0);
      e.metrics["w0"] = w0;
    }
    return e;
  }
  std::vector<std::string> write_exports(const Model& model) override {
    const std::string path = run_dir_ + "/toy.txt";
    std::ofstream(path) << const_cast<Model&>(model).params().value(0).f32()[0] << "\n";
    return {path};
  }
  void gather_report(PipelineContext& ctx, const Model&) override {
    ctx.report.gather_per_rank(ctx.session.comm(), "toy_per_rank", 1.5, "");
  }

 private:
  std::string run_dir_;
};

void export_toy(const CheckpointReader& reader, const ExportRequest& request) {
  std::ofstream(request.out) << reader.meta().step << "\n";
}

}  // namespace

LOOM_REGISTER_MODEL(toy, ToyRecipe, export_toy, "a model kind only this test knows");

namespace {

TEST(ModelRegistry, AKindDefinedOutsideLaunchTrainsThroughTheSharedPipeline) {
  test::TempDir dir;
  // The toy reads no corpus; a training session names one (the planted corpus, never built).
  Session session({"", {"train.model=toy", "corpus.synthetic=true", "run.dir=" + dir.path(), "eval.every_epochs=1",
                        "checkpoint.every_minutes=0", "toy.steps=6", "toy.steps_per_epoch=3"},
                   true, "train"});
  ASSERT_EQ(run_train_pipeline(session), 0);

  const nlohmann::json e = nlohmann::json::parse(test::read_file(dir.file("eval.json")));
  ASSERT_EQ(e["epochs"].size(), 2u) << e.dump(2);
  // After 3 and 6 steps at lr 0.25 from 0: w = 1 - 0.75^s; the epoch hook evaluated both.
  EXPECT_NEAR(e["epochs"][0]["w0"].get<double>(), 1 - 0.421875, 1e-6);
  EXPECT_NEAR(e["epochs"][1]["w0"].get<double>(), 1 - 0.177978515625, 1e-6);
  // Epoch loss: the mean over the epoch's steps of 0.5 * 4 * (1 - w)^2 before each step.
  EXPECT_NEAR(e["epochs"][0]["loss"].get<double>(), 2.0 * (1 + 0.5625 + 0.31640625) / 3, 1e-6);
  EXPECT_NEAR(e["toy_w0"].get<double>(), 1 - 0.177978515625, 1e-6);
  EXPECT_EQ(e["toys"].get<int64_t>(), 6);
  EXPECT_TRUE(e["seconds"]["toy_data_reused"].get<bool>());
  EXPECT_EQ(e["seconds"]["toy_per_rank"].size(), 1u);
  ASSERT_EQ(e["exports"].size(), 1u);
  EXPECT_EQ(e["exports"][0].get<std::string>(), dir.file("toy.txt"));
  EXPECT_TRUE(std::filesystem::exists(dir.file("toy.txt")));

  // The checkpoint holds the kind's name and the kind's section in its stored config.
  CheckpointReader reader;
  reader.open(dir.file("checkpoints/step_00000006.h5"));
  EXPECT_EQ(reader.meta().model_kind, "toy");
  const Config stored = load_config_text(reader.meta().config_toml, "stored", {});
  EXPECT_EQ(stored.models.get<ToySection>().steps_per_epoch, 3);
  EXPECT_EQ(stored.train.model, "toy");
  // `loom export` finds the kind's export by the checkpoint's model_kind.
  const std::string out = dir.file("export.txt");
  find_model_kind(reader.meta().model_kind).export_checkpoint(reader, {dir.file("x"), "", out, ""});
  EXPECT_EQ(test::read_file(out), "6\n");
}

TEST(ModelRegistry, ConfigKnowsEveryRegisteredKindAndSection) {
  std::vector<std::string> names;
  for (const ModelKind& k : model_kinds()) names.push_back(k.name);
  EXPECT_EQ(names, (std::vector<std::string>{"bert", "glove", "gpt", "toy", "word2vec"}));
  EXPECT_EQ(model_kind_names(), "bert|glove|gpt|toy|word2vec");
  EXPECT_EQ(load_config_text("[train]\nmodel = \"toy\"\n[toy]\nlr = 0.5\n", "t.toml", {}).models.get<ToySection>().lr, 0.5);
  // Unknown kind: the error lists the registered ones; a near miss in a kind's section is suggested.
  std::string msg;
  try {
    load_config_text("", "t", {"train.model=toyy"});
  } catch (const ConfigError& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("train.model"), std::string::npos) << msg;
  EXPECT_NE(msg.find("toy"), std::string::npos) << msg;
  msg.clear();
  try {
    load_config_text("[toy]\nstepz = 3\n", "t.toml", {});
  } catch (const ConfigError& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("toy.steps"), std::string::npos) << msg;
  EXPECT_NE(describe_config_schema().find("toy.steps_per_epoch"), std::string::npos);
  EXPECT_THROW(find_model_kind("gpt3"), ConfigError);
  // Sections are values: a copy is deep, and == compares them.
  Config a;
  Config b = a;
  b.models.get<ToySection>().lr = 2;
  EXPECT_EQ(a.models.get<ToySection>().lr, 0.25);
  EXPECT_FALSE(a == b);
  EXPECT_EQ(config_value_text(b, "toy.lr"), "2.0");
  EXPECT_EQ(load_config_text(config_to_toml(b), "round trip", {}), b);
}

}  // namespace
}  // namespace loom
