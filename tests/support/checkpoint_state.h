#pragma once
// The trained state in a checkpoint, for tests that compare runs bit for bit: every
// /model and /optimizer dataset as float32, the run's final checkpoint (the one `latest`
// names), and an equality check that names the first differing element. Header-only: the
// tests that use it link loom_io and loom_core themselves.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "core/param_store.h"
#include "io/checkpoint.h"
#include "tests/support/test_support.h"

namespace loom::test {

// /model and /optimizer datasets of a checkpoint, as float32 arrays, in the file's order.
inline std::vector<std::vector<float>> checkpoint_state(const std::string& path) {
  CheckpointReader reader;
  reader.open(path);
  std::vector<std::vector<float>> out;
  for (const DatasetInfo& d : reader.list_datasets()) {
    const bool model = d.path.rfind("/model/", 0) == 0, slot = d.path.rfind("/optimizer/", 0) == 0;
    if (!model && !slot) continue;
    std::vector<float> values(d.bytes / 4);
    const Shape shape = Shape::from(d.shape.data(), static_cast<int>(d.shape.size()));
    const std::string name = d.path.substr(d.path.find('/', 1) + 1);
    if (model) {
      ParamStore ps;
      ps.declare(name, shape);
      ps.finalize();
      reader.read_model_into(ps);
      std::copy_n(ps.value(0).f32(), values.size(), values.data());
    } else {
      const size_t slash = name.rfind('/');
      reader.read_slot(name.substr(0, slash), name.substr(slash + 1), Tensor(values.data(), shape, DType::kF32));
    }
    out.push_back(std::move(values));
  }
  return out;
}

// metrics.jsonl's loss by step index (from 0; the file counts steps done, from 1: Note [Step
// numbers]). A resumed run appends, so a later record of a step replaces an earlier one (the
// killed run's steps after its last checkpoint); a line cut by kill -9 is skipped.
inline std::map<int64_t, double> step_losses(const std::string& run_dir) {
  std::map<int64_t, double> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    const nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.contains("step") || !j.contains("loss")) continue;
    out[j["step"].get<int64_t>() - 1] = j["loss"].get<double>();
  }
  return out;
}

// The checkpoint that run_dir/checkpoints/latest names: after a finished run, its last.
inline std::string final_checkpoint(const std::string& run_dir) {
  const std::string latest = read_file(run_dir + "/checkpoints/latest");
  return run_dir + "/checkpoints/" + latest.substr(0, latest.find('\n'));
}

// Bit-for-bit equality of two states, naming the dataset and element of the first difference.
inline void expect_equal_state(const std::vector<std::vector<float>>& got, const std::vector<std::vector<float>>& want,
                               const std::string& what) {
  ASSERT_FALSE(want.empty()) << what << ": the expected state is empty";
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t d = 0; d < want.size(); ++d) {
    ASSERT_EQ(got[d].size(), want[d].size()) << what << ", dataset " << d;
    for (size_t k = 0; k < want[d].size(); ++k)
      ASSERT_EQ(std::memcmp(&got[d][k], &want[d][k], 4), 0)
          << what << ", dataset " << d << ", element " << k << ": expected " << want[d][k] << ", got " << got[d][k];
  }
}


// The step of the checkpoint `latest` names (step_NNNNNNNN.h5).
inline int64_t final_step(const std::string& run_dir) {
  const std::string path = final_checkpoint(run_dir);
  const size_t at = path.rfind("step_");
  return at == std::string::npos ? -1 : std::stoll(path.substr(at + 5));
}

// Resume at another world size: `config` (a planted-corpus example, `sets` applied) trains
// for `epochs` epochs at np_from ranks keeping every checkpoint; then a run at np_to ranks
// resumes from the one in the middle of the second epoch (so the data cursor has to be
// re-split). It must finish every epoch (the first record partial, then whole epochs up to
// `epochs`) and still learn the planted relations (accuracy >= 0.9 on the 528 questions).
inline void expect_resume_at_other_world_size(const std::string& config, std::vector<std::string> sets,
                                              int64_t epochs, int np_from, int np_to, const TempDir& dir) {
  using namespace std::chrono_literals;
  auto command = [&](int np, const std::string& run_dir, const std::string& resume) {
    std::vector<std::string> cmd = np > 1 ? mpirun_prefix(np) : std::vector<std::string>{};
    cmd.insert(cmd.end(), {loom_binary(), "train", config, "--set", "run.dir=" + run_dir, "--set",
                           "checkpoint.every_steps=1", "--set", "checkpoint.keep_every_steps=1", "--set",
                           "eval.every_epochs=0", "--set", "progress.interval_s=30"});
    for (const std::string& s : sets) cmd.insert(cmd.end(), {"--set", s});
    if (!resume.empty()) cmd.insert(cmd.end(), {"--resume", resume});
    return cmd;
  };
  const std::string first = dir.file("from"), second = dir.file("to");
  RunResult a = run(command(np_from, first, ""), 300s);
  ASSERT_EQ(a.status, 0) << a.err;
  const int64_t total = final_step(first);
  ASSERT_GT(total, 0);
  ASSERT_EQ(total % epochs, 0) << "steps " << total << " are not whole epochs";
  const int64_t per_epoch = total / epochs;
  ASSERT_GE(per_epoch, 2) << "the test needs a checkpoint inside an epoch";
  const int64_t step = per_epoch + per_epoch / 2;
  char name[64];
  std::snprintf(name, sizeof name, "/checkpoints/step_%08lld.h5", static_cast<long long>(step));
  RunResult b = run(command(np_to, second, first + name), 300s);
  ASSERT_EQ(b.status, 0) << b.err;
  const nlohmann::json e = nlohmann::json::parse(read_file(second + "/eval.json"));
  EXPECT_EQ(e["world_size"].get<int>(), np_to);
  const nlohmann::json& recs = e["epochs"];
  ASSERT_EQ(static_cast<int64_t>(recs.size()), epochs - 1) << e.dump() << "\n" << b.err;
  EXPECT_TRUE(recs[0]["partial"].get<bool>()) << e.dump();
  for (size_t i = 0; i < recs.size(); ++i) {
    EXPECT_EQ(recs[i]["epoch"].get<int64_t>(), static_cast<int64_t>(i) + 2) << e.dump();
    if (i > 0) {
      EXPECT_FALSE(recs[i]["partial"].get<bool>()) << e.dump();
    }
  }
  const double accuracy = e["analogy"]["total"]["accuracy"].get<double>();
  std::printf("resumed at %d ranks from step %lld of %lld (written at %d ranks, %lld steps per epoch): accuracy %.4f\n",
              np_to, static_cast<long long>(step), static_cast<long long>(total), np_from,
              static_cast<long long>(per_epoch), accuracy);
  EXPECT_GE(accuracy, 0.9) << b.out;
}

}  // namespace loom::test
