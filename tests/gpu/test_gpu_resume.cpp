// `loom train` with run.device = "cuda" through the real binary, and checkpoints across
// devices (label gpu; skips visibly without a GPU). Checkpoints hold float32 host data
// whatever the device (Note [Training on a GPU] in launch/run/train_device.h), so:
//   - a GPU run of 8 steps, and the same run resumed on the CPU from its step-4
//     checkpoint, end with the same parameters and the same losses for steps 5-8;
//   - a CPU run of 8 steps, and the same run resumed on the GPU from its step-4
//     checkpoint, likewise;
//   - the GPU run and the CPU run agree with each other.
// Tolerances: the GPU and the CPU sum in other orders (cuBLAS, the fused attention, the
// column sums), and AdamW magnifies the last-bit differences of tiny gradients (Note [GPT
// e2e tolerances] in tests/e2e/gpt_test.cpp: 7e-6 across world sizes over 24 steps), so
// parameters agree to 5e-4 absolute and step losses to 1e-4 relative. Steps 5-8 must move
// the parameters by more than 10x that tolerance (lr 1e-2), so a resume that skipped
// steps or restarted from the initial parameters could not pass. (With the CPU standing
// in for the GPU the four runs agree bit for bit and that check holds.)
// Needs the loom binary and, like every `loom train`, MPI's runtime (one rank, no mpirun).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "core/device.h"
#include "tests/support/checkpoint_state.h"
#include "tests/support/test_support.h"

namespace loom::test {
namespace {

using namespace std::chrono_literals;
using nlohmann::json;

constexpr double kParamAbsTol = 5e-4;
constexpr double kLossRelTol = 1e-4;

std::string plays(size_t bytes) {
  static const char* kWords[] = {"the", "king", "queen", "sword", "crown", "night", "day", "love",
                                 "war", "peace", "good", "fair", "sweet", "heart", "and", "my"};
  std::string text;
  for (unsigned i = 0; text.size() < bytes; ++i) {
    text += (i % 3 == 0 ? "KING:\n" : "QUEEN:\n");
    for (unsigned w = 0; w < 6 + i % 5; ++w) text += std::string(w ? " " : "") + kWords[(i * 7 + w * 3) % 16];
    text += ".\n\n";
  }
  return text;
}

std::vector<double> losses(const std::string& run_dir) {
  std::vector<double> out;
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::string line;
  while (std::getline(in, line)) {
    const json j = json::parse(line);
    const auto step = j["step"].get<size_t>();   // steps done, from 1
    if (out.size() < step) out.resize(step, std::nan(""));
    out[step - 1] = j["loss"].get<double>();
  }
  return out;
}

// The /model datasets of a checkpoint as float32 arrays, in the file's order.
std::vector<std::vector<float>> model_params(const std::string& path) {
  CheckpointReader reader;
  reader.open(path);
  std::vector<std::vector<float>> out;
  for (const DatasetInfo& d : reader.list_datasets()) {
    if (d.path.rfind("/model/", 0) != 0) continue;
    ParamStore ps;
    ps.declare(d.path.substr(7), Shape::from(d.shape.data(), static_cast<int>(d.shape.size())));
    ps.finalize();
    reader.read_model_into(ps);
    out.emplace_back(ps.value(0).f32(), ps.value(0).f32() + ps.value(0).numel());
  }
  return out;
}

double max_abs_diff(const std::vector<std::vector<float>>& a, const std::vector<std::vector<float>>& b) {
  EXPECT_EQ(a.size(), b.size());
  double worst = 0.0;
  for (size_t d = 0; d < std::min(a.size(), b.size()); ++d) {
    EXPECT_EQ(a[d].size(), b[d].size());
    for (size_t k = 0; k < std::min(a[d].size(), b[d].size()); ++k)
      worst = std::max(worst, double(std::fabs(a[d][k] - b[d][k])));
  }
  return worst;
}

TEST(GpuResume, GptCheckpointsMoveBetweenTheGpuAndTheCpu) {
  if (!cuda_available())
    LOOM_SKIP_NO_GPU("no CUDA device visible (cuda_device_count() == 0, driver " + cuda_driver_version() + ")");
  TempDir dir;
  write_file(dir.file("plays.txt"), plays(120 * 1000));
  const std::string config = dir.file("gpt.toml");
  write_file(config,
             "[run]\nname = \"gpt\"\nseed = 5\nthreads = 1\n"
             "[train]\nmodel = \"gpt\"\n"
             "[tokens]\ntokenizer = \"char\"\ndocuments = \"file\"\nheldout_fraction = 0.1\n"
             "[gpt]\nn_layer = 2\nn_head = 2\nd_model = 32\nseq_len = 32\nbatch_size = 6\nsteps = 8\n"
             "lr = 1e-2\nlr_min = 1e-3\nwarmup_steps = 0\neval_every = 0\neval_batches = 2\n"
             "[checkpoint]\nevery_steps = 4\nkeep_every_steps = 4\nkeep_last = 5\n"
             "[progress]\ninterval_s = 30\n");
  auto train = [&](const std::string& name, const std::string& device, const std::string& resume) {
    std::vector<std::string> args = {"train", config, "--set", "run.dir=" + dir.file(name), "--set",
                                     "corpus.paths=[\"" + dir.file("plays.txt") + "\"]", "--set",
                                     "run.device=" + device};
    if (!resume.empty()) args.insert(args.end(), {"--resume", resume});
    RunResult r = run(loom_cmd(1, args), 300s);
    EXPECT_EQ(r.status, 0) << name << ":\n" << r.out << r.err;
    return r.status == 0;
  };
  const std::string step4 = "/checkpoints/step_00000004.h5";
  ASSERT_TRUE(train("gpu", "cuda", ""));
  ASSERT_TRUE(train("cpu", "cpu", ""));
  ASSERT_TRUE(train("gpu_then_cpu", "cpu", dir.file("gpu") + step4));
  ASSERT_TRUE(train("cpu_then_gpu", "cuda", dir.file("cpu") + step4));
  for (const char* name : {"gpu", "cpu", "gpu_then_cpu", "cpu_then_gpu"}) EXPECT_EQ(final_step(dir.file(name)), 8) << name;

  auto final_params = [&](const char* name) { return model_params(final_checkpoint(dir.file(name))); };
  const auto gpu = final_params("gpu"), cpu = final_params("cpu");
  const auto gpu_cpu = final_params("gpu_then_cpu"), cpu_gpu = final_params("cpu_then_gpu");
  const auto at4 = model_params(dir.file("gpu") + step4);
  std::printf("max |difference| of the final parameters: gpu vs cpu %.3g, gpu vs gpu->cpu %.3g, cpu vs cpu->gpu %.3g\n",
              max_abs_diff(gpu, cpu), max_abs_diff(gpu, gpu_cpu), max_abs_diff(cpu, cpu_gpu));
  EXPECT_LE(max_abs_diff(gpu, gpu_cpu), kParamAbsTol) << "a GPU run resumed on the CPU";
  EXPECT_LE(max_abs_diff(cpu, cpu_gpu), kParamAbsTol) << "a CPU run resumed on the GPU";
  EXPECT_LE(max_abs_diff(gpu, cpu), kParamAbsTol) << "the GPU run against the CPU run";
  EXPECT_GT(max_abs_diff(gpu, at4), 10 * kParamAbsTol) << "steps 5-8 hardly moved the parameters: the test means nothing";

  const std::vector<double> lg = losses(dir.file("gpu")), lc = losses(dir.file("cpu"));
  const std::vector<double> lgc = losses(dir.file("gpu_then_cpu")), lcg = losses(dir.file("cpu_then_gpu"));
  ASSERT_EQ(lg.size(), 8u);
  ASSERT_EQ(lc.size(), 8u);
  ASSERT_GE(lgc.size(), 8u);
  ASSERT_GE(lcg.size(), 8u);
  for (size_t s = 0; s < 8; ++s) {
    EXPECT_NEAR(lc[s], lg[s], kLossRelTol * lg[s]) << "step " << s + 1 << ": CPU against GPU";
    if (s < 4) continue;   // the resumed runs log steps 5-8
    EXPECT_NEAR(lgc[s], lg[s], kLossRelTol * lg[s]) << "step " << s + 1 << ": GPU run resumed on the CPU";
    EXPECT_NEAR(lcg[s], lc[s], kLossRelTol * lc[s]) << "step " << s + 1 << ": CPU run resumed on the GPU";
  }
}

}  // namespace
}  // namespace loom::test
