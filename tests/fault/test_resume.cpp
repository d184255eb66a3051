// Checkpoint and resume on real processes: SIGKILL at random moments and during checkpoint
// writes, then --resume auto, must end bit-for-bit equal to an uninterrupted run (world
// sizes 1 and 2); resume at another world size; a damaged newest checkpoint; a full disk;
// a changed model shape; a stop signal. The model is tests/support/regression_model.h run
// by train_tool through the real Trainer, Session, config and checkpoint code.
#include <gtest/gtest.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "core/param_store.h"
#include "io/checkpoint.h"
#include "io/h5.h"
#include "tests/support/test_support.h"

namespace loom::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

std::string tool() {
  const char* p = std::getenv("LOOM_TRAIN_TOOL");
  if (p == nullptr) throw std::runtime_error("LOOM_TRAIN_TOOL is not set (run through ctest)");
  return p;
}

struct Job {
  int np = 1;
  std::string dir;
  std::vector<std::string> args;   // model flags and --set overrides
};

std::vector<std::string> command(const Job& job, const std::string& resume = "") {
  std::vector<std::string> cmd;
  if (job.np > 1) cmd = mpirun_prefix(job.np);
  cmd.insert(cmd.end(), {tool(), "--set", "run.dir=" + job.dir, "--set", "progress.interval_s=5"});
  cmd.insert(cmd.end(), job.args.begin(), job.args.end());
  if (!resume.empty()) cmd.insert(cmd.end(), {"--resume", resume});
  return cmd;
}

std::string ckpt_dir(const Job& job) { return job.dir + "/checkpoints"; }

// Final parameters and optimizer state of a finished run, as raw bytes per dataset.
std::vector<std::vector<float>> final_state(const std::string& path) {
  CheckpointReader reader;
  reader.open(path);
  std::vector<std::vector<float>> out;
  for (const DatasetInfo& d : reader.list_datasets()) {
    if (d.path.rfind("/model/", 0) != 0 && d.path.rfind("/optimizer/", 0) != 0) continue;
    std::vector<float> values(d.bytes / 4);
    std::string name = d.path.substr(d.path.find('/', 1) + 1);
    if (d.path.rfind("/model/", 0) == 0) {
      ParamStore ps;
      ps.declare(name, Shape::from(d.shape.data(), int(d.shape.size())));
      ps.finalize();
      reader.read_model_into(ps);   // checks this one parameter (the others are ignored)
      std::copy_n(ps.value(0).f32(), values.size(), values.data());
    } else {
      size_t slash = name.rfind('/');
      reader.read_slot(name.substr(0, slash), name.substr(slash + 1),
                       Tensor(values.data(), Shape::from(d.shape.data(), int(d.shape.size())), DType::kF32));
    }
    out.push_back(std::move(values));
  }
  return out;
}

std::string final_checkpoint(const Job& job, int steps) {
  char name[32];
  std::snprintf(name, sizeof name, "step_%08d.h5", steps);
  return ckpt_dir(job) + "/" + name;
}

// Runs `job` with --resume auto until it exits 0 (at most `tries` times).
void resume_to_end(const Job& job, int tries = 5) {
  for (int i = 0; i < tries; ++i) {
    RunResult r = run(command(job, "auto"), 300s);
    ASSERT_FALSE(r.timed_out) << r.err;
    if (r.status == 0) return;
    ADD_FAILURE() << "resume exited " << r.status << ":\n" << r.err;
  }
}

class KillResume : public ::testing::TestWithParam<int> {};

// Twenty kills at world size np: odd iterations at a random moment, even ones in the middle
// of a checkpoint write. Every resumed run must end with the reference's exact bytes. A kill
// counts as inside a write only when the directory shows the write unfinished after the job
// died (unfinished_checkpoint_write). Random instants include MPI_Init: Open MPI 4.1's
// teardown race is tolerated for them (MpirunTeardownHang); the write-aimed kills land long
// after MPI_Init, where any hang of mpirun is a failure. After every kill no process of
// the job is left (Note [No process left behind]).
TEST_P(KillResume, TwentyKillsEndBitForBitEqualToAnUninterruptedRun) {
  const int np = GetParam();
  const std::vector<std::string> args = {"--dim", "65536", "--batch", "16", "--steps", "40", "--seed", "11",
                                         "--set", "checkpoint.every_steps=4", "--set", "checkpoint.keep_last=2"};
  TempDir ref_dir;
  Job ref{np, ref_dir.path(), args};
  auto t0 = std::chrono::steady_clock::now();
  RunResult r = run(command(ref), 300s);
  ASSERT_EQ(r.status, 0) << r.err;
  auto duration = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  const auto reference = final_state(final_checkpoint(ref, 40));
  ASSERT_FALSE(reference.empty());

  std::mt19937 gen(20261122u + unsigned(np));
  int during_write = 0;
  for (int i = 0; i < 20; ++i) {
    TempDir dir;
    Job job{np, dir.path(), args};
    std::string unfinished;
    {
      // Write-aimed kills: each checkpoint write pauses 300 ms with its .tmp complete
      // (LOOM_FAULT_CHECKPOINT_PAUSE_MS), so the kill that follows the write's first sight lands inside it.
      if (i % 2 == 0) ::setenv("LOOM_FAULT_CHECKPOINT_PAUSE_MS", "300", 1);
      Process p(command(job));
      ::unsetenv("LOOM_FAULT_CHECKPOINT_PAUSE_MS");
      if (i % 2 == 0) {
        // Let a random number of writes end (their tmp file renamed), then kill inside the
        // next, with the ranks found beforehand so that the kill follows the event at once.
        const std::vector<pid_t> ranks = wait_for_ranks(p, "train_tool", size_t(np), 120s);
        ASSERT_EQ(ranks.size(), size_t(np)) << p.err();
        const int skip = int(gen() % 6);
        std::string tmp;
        for (int s = 0; s <= skip && wait_for_checkpoint_write(ckpt_dir(job), p, 120s, &tmp); ++s) {
          if (s < skip) {
            ASSERT_TRUE(wait_until([&] { return !fs::exists(tmp); }, 120s, &p)) << tmp << " stays";
          }
        }
        kill(ranks[gen() % ranks.size()], SIGKILL);
      } else {
        std::uniform_int_distribution<int64_t> when(0, duration.count());
        std::this_thread::sleep_for(std::chrono::milliseconds(when(gen)));   // a random instant, on purpose
        if (np == 1) p.signal(SIGKILL);
        else kill_one_rank(p, "train_tool", gen);
      }
      // Only a kill at a random instant can fall inside MPI_Init (Note on wait_for_killed_job).
      ASSERT_TRUE(wait_for_killed_job(p, "train_tool", 60s,
                                      i % 2 == 0 ? MpirunTeardownHang::kFailure
                                                 : MpirunTeardownHang::kToleratedOpenMpi41Race))
          << "iteration " << i;
      expect_nothing_left(job.dir, "iteration " + std::to_string(i));
      unfinished = unfinished_checkpoint_write(ckpt_dir(job));
    }
    during_write += unfinished.empty() ? 0 : 1;
    std::printf("iteration %d: %s\n", i, unfinished.empty() ? "no write was unfinished" : unfinished.c_str());
    resume_to_end(job);
    const auto resumed = final_state(final_checkpoint(job, 40));
    ASSERT_EQ(resumed.size(), reference.size()) << "iteration " << i;
    for (size_t d = 0; d < reference.size(); ++d)
      for (size_t k = 0; k < reference[d].size(); ++k)
        ASSERT_EQ(std::memcmp(&resumed[d][k], &reference[d][k], 4), 0)
            << "iteration " << i << ", dataset " << d << ", element " << k << ": expected " << reference[d][k]
            << ", got " << resumed[d][k];
  }
  EXPECT_GE(during_write, 5) << "too few kills left a checkpoint write unfinished";
  std::printf("np=%d: %d of 20 kills landed inside a checkpoint write\n", np, during_write);
}

INSTANTIATE_TEST_SUITE_P(WorldSize, KillResume, ::testing::Values(1, 2));

double last_loss(const std::string& run_dir) {
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::string line, last;
  while (std::getline(in, line)) last = line;
  size_t at = last.find("\"loss\":");
  return at == std::string::npos ? -1 : std::stod(last.substr(at + 7));
}

double first_loss(const std::string& run_dir) {
  std::ifstream in(run_dir + "/metrics.jsonl");
  std::string line;
  std::getline(in, line);
  size_t at = line.find("\"loss\":");
  return at == std::string::npos ? -1 : std::stod(line.substr(at + 7));
}

class OtherWorldSize : public ::testing::TestWithParam<std::pair<int, int>> {};

TEST_P(OtherWorldSize, ResumesAndConverges) {
  auto [from, to] = GetParam();
  TempDir dir;
  std::vector<std::string> args = {"--dim", "32", "--batch", "24", "--seed", "5"};
  Job first{from, dir.path(), args};
  first.args.insert(first.args.end(), {"--steps", "100"});
  RunResult a = run(command(first), 300s);
  ASSERT_EQ(a.status, 0) << a.err;
  Job second{to, dir.path(), args};
  second.args.insert(second.args.end(), {"--steps", "300"});   // the schedule may grow on resume
  RunResult b = run(command(second, "auto"), 300s);
  ASSERT_EQ(b.status, 0) << b.err;
  EXPECT_NE(b.err.find("resumed from"), std::string::npos) << b.err;
  EXPECT_NE(b.err.find("written by " + std::to_string(from) + " rank(s), now " + std::to_string(to)),
            std::string::npos)
      << b.err;
  double start = first_loss(dir.path()), end = last_loss(dir.path());
  EXPECT_GT(start, 0);
  EXPECT_LT(end, 0.05 * start) << "did not converge after resuming at another world size";
}

INSTANTIATE_TEST_SUITE_P(Resplit, OtherWorldSize,
                         ::testing::Values(std::make_pair(3, 2), std::make_pair(2, 3)));

// Flips one byte inside the data of `dataset` ("/model/weight"), found with H5Dget_offset
// as tests/io/test_checkpoint_files.cpp does, so the damage is known by name.
void flip_byte_in(const std::string& path, const std::string& dataset) {
  uint64_t offset = 0;
  {
    const size_t slash = dataset.rfind('/');
    h5::File f = h5::File::open(path, false);
    auto off = f.open_group(dataset.substr(1, slash - 1)).open_dataset(dataset.substr(slash + 1)).file_offset();
    ASSERT_TRUE(off.has_value()) << dataset;
    offset = *off + 7;
  }
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = char(c ^ 0x5a);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
  ASSERT_TRUE(f.good()) << path;
}

// The line of `text` that contains `part` ("" when none).
std::string line_with(const std::string& text, const std::string& part) {
  const size_t at = text.find(part);
  if (at == std::string::npos) return "";
  const size_t begin = text.rfind('\n', at) == std::string::npos ? 0 : text.rfind('\n', at) + 1;
  return text.substr(begin, text.find('\n', at) - begin);
}

TEST(ResumeAuto, SkipsADamagedNewestCheckpointAndStillMatches) {
  std::vector<std::string> args = {"--dim", "4096", "--batch", "8", "--seed", "3", "--set",
                                   "checkpoint.every_steps=5", "--set", "checkpoint.keep_last=5"};
  TempDir ref_dir, dir;
  Job ref{1, ref_dir.path(), args}, job{1, dir.path(), args};
  ref.args.insert(ref.args.end(), {"--steps", "30"});
  ASSERT_EQ(run(command(ref), 120s).status, 0);
  job.args.insert(job.args.end(), {"--steps", "20"});
  ASSERT_EQ(run(command(job), 120s).status, 0);
  flip_byte_in(final_checkpoint(job, 20), "/optimizer/weight/m");
  job.args.back() = "30";
  RunResult r = run(command(job, "auto"), 120s);
  ASSERT_EQ(r.status, 0) << r.err;
  // The warning names the file, the damaged dataset and the damage, on one line.
  const std::string warning = line_with(r.err, "skipping damaged checkpoint");
  EXPECT_NE(warning.find(final_checkpoint(job, 20)), std::string::npos) << "damage not reported:\n" << r.err;
  EXPECT_NE(warning.find("/optimizer/weight/m"), std::string::npos) << "the dataset is not named:\n" << r.err;
  EXPECT_NE(warning.find("checksum mismatch"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("resumed from " + final_checkpoint(job, 15)), std::string::npos) << r.err;
  EXPECT_EQ(final_state(final_checkpoint(job, 30)), final_state(final_checkpoint(ref, 30)));
}

TEST(ResumeAuto, RefusesAChangedModelShapeNamingTheKey) {
  TempDir dir;
  Job job{1, dir.path(), {"--dim", "64", "--steps", "10", "--seed", "1"}};
  ASSERT_EQ(run(command(job), 120s).status, 0);
  job.args[1] = "32";
  RunResult r = run(command(job, "auto"), 120s);
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_NE(r.err.find("regression.dim: checkpoint 64, now 32"), std::string::npos) << r.err;
}

// The model can be saved only after every 7th step (Model::checkpoint_ready, as word2vec
// with rare rows): the stop request waits for such a step.
TEST(StopSignal, CheckpointsThenExitsAndResumesExactly) {
  std::vector<std::string> args = {"--dim", "65536", "--batch", "16", "--steps", "200", "--seed", "9",
                                   "--ready-every", "7"};
  TempDir ref_dir, dir;
  Job ref{2, ref_dir.path(), args}, job{2, dir.path(), args};
  ASSERT_EQ(run(command(ref), 300s).status, 0);
  {
    Process p(command(job));
    // Training is under way once metrics.jsonl has a line (progress.metrics_every = 1).
    ASSERT_TRUE(wait_until([&] { return read_file(dir.path() + "/metrics.jsonl").find('\n') != std::string::npos; },
                           120s, &p))
        << "no step was reported:\n" << p.err();
    std::vector<pid_t> ranks = descendants_named(p.pid(), "train_tool");
    ASSERT_EQ(ranks.size(), 2u);
    kill(ranks[1], SIGTERM);
    ASSERT_TRUE(p.wait_for(120s)) << describe_descendants(p.pid());
    expect_nothing_left(job.dir, "the job stopped by SIGTERM");
    EXPECT_EQ(p.exit_status(), 128 + SIGTERM) << p.err();
    EXPECT_NE(p.err().find("(stop request"), std::string::npos) << p.err();
    const size_t at = p.err().find("all ranks stopped after step ");
    ASSERT_NE(at, std::string::npos) << p.err();
    const int steps = std::atoi(p.err().c_str() + at + std::strlen("all ranks stopped after step "));
    EXPECT_EQ(steps % 7, 0) << "saved after step " << steps << ", which the model cannot be saved at";
    EXPECT_TRUE(fs::exists(final_checkpoint(job, steps))) << steps;
  }
  RunResult r = run(command(job, "auto"), 300s);
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(final_state(final_checkpoint(job, 200)), final_state(final_checkpoint(ref, 200)));
}

// Runs train_tool with its checkpoints on a 1.7 MB tmpfs mounted in a private mount
// namespace (dim 65536: a checkpoint is ~0.84 MB on disk and reserves ~1.19 MB while
// written, so the first fits and the second does not fit next to it; the reservation was
// ~2 MB before issue 20 and the tmpfs 2.4 MB). The shell prints "exit status
// N" and copies the tmpfs to DIR/copy before the namespace goes away.
RunResult run_on_full_disk(const TempDir& dir, const std::vector<std::string>& sets) {
  std::string mnt = dir.file("small");
  fs::create_directories(mnt);
  std::vector<std::string> args = {"--dim", "65536", "--steps", "12", "--seed", "2", "--set",
                                   "checkpoint.every_steps=5", "--set", "checkpoint.dir=" + mnt};
  for (const std::string& s : sets) args.insert(args.end(), {"--set", s});
  std::string cmd = "mount -t tmpfs -o size=1700k tmpfs " + mnt + " && ";
  for (const std::string& a : command(Job{1, dir.path(), args})) cmd += " '" + a + "'";
  cmd += "; echo 'exit status' $? >&2; cp -r " + mnt + " " + dir.file("copy") + "; exit 0";
  return run({"unshare", "-m", "sh", "-c", cmd}, 120s);
}

bool can_unshare_mounts(std::string* why) {
  RunResult probe = run({"unshare", "-m", "true"}, 30s);
  *why = probe.err;
  return probe.status == 0;
}

// A full disk: the failed write names the file and the OS error, the previous checkpoint
// and `latest` stay good, nothing crashes.
TEST(DiskFull, PreviousCheckpointSurvivesAndTheErrorSaysWhere) {
  std::string why;
  if (!can_unshare_mounts(&why)) LOOM_SKIP_OR_FAIL("cannot create a mount namespace here (unshare -m refused): " + why);
  TempDir dir;
  RunResult r = run_on_full_disk(dir, {"checkpoint.keep_last=3"});
  ASSERT_FALSE(r.timed_out);
  EXPECT_NE(r.err.find("exit status 1"), std::string::npos) << "expected a clean error exit:\n" << r.err;
  EXPECT_NE(r.err.find("step_00000010.h5.tmp"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("No space left on device"), std::string::npos) << r.err;
  std::string copy = dir.file("copy");
  EXPECT_EQ(read_file(copy + "/latest").find("step_00000005.h5"), 0u) << read_file(copy + "/latest");
  EXPECT_FALSE(fs::exists(copy + "/step_00000010.h5.tmp"));
  bool ok = false;
  inspect_checkpoint(copy + "/step_00000005.h5", &ok);
  EXPECT_TRUE(ok);
}

}  // namespace
}  // namespace loom::test

namespace loom::test {
namespace {

// every_steps 5 on a model that can be saved only after multiples of 3 steps: each due
// checkpoint waits for the next such step (5 -> 6, 10 -> 12, 15), then the end (20).
TEST(Triggers, EveryStepsWaitsForAStepTheModelCanSaveAt) {
  TempDir dir;
  Job job{1, dir.path(), {"--dim", "64", "--steps", "20", "--ready-every", "3", "--set", "checkpoint.every_steps=5",
                          "--set", "checkpoint.keep_last=10"}};
  RunResult r = run(command(job), 120s);
  ASSERT_EQ(r.status, 0) << r.err;
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(ckpt_dir(job)))
    if (e.path().extension() == ".h5") names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"step_00000006.h5", "step_00000012.h5", "step_00000015.h5",
                                             "step_00000020.h5"}));
}

TEST(Inspect, ReportsAValidCheckpointAndRefusesADamagedOne) {
  TempDir dir;
  Job job{1, dir.path(), {"--dim", "4096", "--steps", "6", "--seed", "4"}};
  ASSERT_EQ(run(command(job), 120s).status, 0);
  RunResult good = run({loom_binary(), "inspect", ckpt_dir(job)}, 60s);
  EXPECT_EQ(good.status, 0) << good.err;
  for (const char* text : {"model_kind regression", "step 6", "/model/weight", "/optimizer/weight/m", "/state/rng"})
    EXPECT_NE(good.out.find(text), std::string::npos) << text << " missing:\n" << good.out;
  EXPECT_EQ(good.out.find("DAMAGED"), std::string::npos) << good.out;
  flip_byte_in(final_checkpoint(job, 6), "/model/weight");
  RunResult bad = run({loom_binary(), "inspect", final_checkpoint(job, 6)}, 60s);
  EXPECT_EQ(bad.status, 1) << bad.out << bad.err;
  // The listing prints every dataset: the damaged one's own line says so, no other does.
  const std::string all = bad.out + bad.err;
  EXPECT_NE(line_with(all, "/model/weight ").find("DAMAGED: checksum mismatch"), std::string::npos) << all;
  EXPECT_EQ(line_with(all, "/optimizer/weight/m").find("DAMAGED"), std::string::npos) << all;
}

TEST(Triggers, EveryMinutesWritesOnRankZerosClock) {
  TempDir dir;
  // ~0.3 s between checkpoints on a run of a few seconds.
  Job job{2, dir.path(), {"--dim", "65536", "--batch", "16", "--steps", "120", "--seed", "8", "--set",
                          "checkpoint.every_minutes=0.005", "--set", "checkpoint.keep_last=50"}};
  RunResult r = run(command(job), 300s);
  ASSERT_EQ(r.status, 0) << r.err;
  size_t timed = 0;
  for (size_t at = r.err.find("(every_minutes"); at != std::string::npos; at = r.err.find("(every_minutes", at + 1))
    ++timed;
  EXPECT_GE(timed, 2u) << r.err;
}

TEST(DiskFull, OnErrorContinueWarnsAndFinishes) {
  std::string why;
  if (!can_unshare_mounts(&why)) LOOM_SKIP_OR_FAIL("cannot create a mount namespace here (unshare -m refused): " + why);
  TempDir dir;
  RunResult r = run_on_full_disk(dir, {"checkpoint.on_error=continue"});
  EXPECT_NE(r.err.find("exit status 0"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("checkpoint.on_error = continue: training goes on"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("finished step 12/12"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace loom::test
