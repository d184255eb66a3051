// A disk that fills up during a checkpoint write, on the real `loom train` of every model
// (GloVe, word2vec, GPT, BERT) at 1 and 2 ranks (issue 20).
//
// checkpoint.dir is a tmpfs mounted in a private mount namespace (`unshare -m`, as
// tests/fault/test_resume.cpp's DiskFull does for its harness; at 2 ranks mpirun runs inside
// the namespace). Per model and world size (Note [Sizing the full disk]):
//  1. an uninterrupted reference run on the ordinary disk (every checkpoint kept);
//  2. the tmpfs too small for any checkpoint: the first write fails, and its message tells
//     the reservation's size; loom exits 1 naming the file, nothing is left on the tmpfs;
//  3. the tmpfs sized so that two checkpoints fit and the third does not: loom exits 1
//     (README "Exit status"; checkpoint.on_error = "stop") with a message that says no space
//     is left, names the file being written, the newest complete checkpoint and what to do;
//     the two earlier checkpoints survive intact (`loom inspect` OK, of this model's kind),
//     `latest` names the second, no .tmp is left;
//  4. room made as a user would: the tmpfs's files copied to a directory on the ordinary disk
//     (inside the namespace, before it goes away), and `--resume auto` with checkpoint.dir
//     there resumes from the second checkpoint and ends bit for bit equal to the reference
//     (every /model and /optimizer dataset, every step's loss from the resumed step on, and
//     vectors.txt of GloVe and word2vec);
//  5. a disk that fills while `latest` is rewritten after the second checkpoint (the test
//     fills it on the pause line of LOOM_FAULT_CHECKPOINT_PHASE=latest): exit 1 with a line
//     that says the step file is whole, `latest` still names the first checkpoint, and what
//     --resume auto and --resume PATH take; the step file equals the reference's; --resume
//     auto resumes from the first checkpoint and ends bit for bit equal to the reference.
// After every run no process of the job is left (by the run directory in its command line).
//
// Note [Sizing the full disk]
// A checkpoint write first reserves an upper bound R of the whole file (Note [Reserved files]
// in io/h5.h); the finished file is S bytes, and `latest` takes one page. A tmpfs of
// R + 1.5 S + 2 pages (rounded up to a page) holds the first checkpoint (R <= size), then
// the second (size - S - 1 page >= R), and refuses the third (size - 2 S - 1 page < R as
// soon as S > 4 pages). R is not computed here from loom's formula (reserve_bound in
// io/checkpoint_write.cpp): step 2's message says it ("cannot reserve R bytes for ..."),
// and every checkpoint of the model reserves about the same R (the same datasets; the
// configs they hold differ in the run's paths, a few bytes, far below the margin of S / 2).
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <regex>
#include <string>
#include <vector>

#include "tests/support/bert_e2e.h"
#include "tests/support/checkpoint_state.h"
#include "tests/fault/fault_models.h"
#include "tests/support/test_support.h"

namespace loom::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr uint64_t kPage = 4096;
// How long rank 0 holds each checkpoint at `latest` in step 5: the window in which the test's
// shell, having seen the pause line, fills the disk (a grep and a dd: milliseconds).
constexpr int kLatestWindowMs = 3000;

// ---- the mount namespace -------------------------------------------------------------------

// Whether this process may mount a tmpfs in a private mount namespace; why not in *why.
bool can_mount_tmpfs(const TempDir& dir, std::string* why) {
  const std::string mnt = dir.file("probe");
  fs::create_directories(mnt);
  RunResult probe = run({"unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs " + quoted(mnt)}, 30s);
  *why = "status " + std::to_string(probe.status) + ": " + probe.out + probe.err;
  return probe.status == 0;
}

// What a run on the small disk left: its exit status and output, and the tmpfs's files,
// copied to `copy` before the namespace went away.
struct FullDiskRun {
  int status = -1;
  std::string err;
  bool timed_out = false;
};

// `cmd` in a private mount namespace with a tmpfs of `bytes` mounted on `mnt`; the shell
// copies the tmpfs's files to `copy` (an ordinary directory) after `cmd` ended, and prints
// "exit status N" last. The shell itself exits 0 unless the mount failed (97).
FullDiskRun run_on_small_disk(const std::vector<std::string>& cmd, const std::string& mnt, uint64_t bytes,
                              const std::string& copy) {
  fs::create_directories(mnt);
  std::string sh = "mount -t tmpfs -o size=" + std::to_string(bytes) + " tmpfs " + quoted(mnt) +
                   " || { echo 'mount failed' >&2; exit 97; };";
  for (const std::string& a : cmd) sh += " " + quoted(a);
  sh += "; s=$?; mkdir -p " + quoted(copy) + " && cp -a " + quoted(mnt + "/.") + " " + quoted(copy) +
        "; echo \"exit status $s\" >&2; exit 0";
  RunResult r = run({"unshare", "-m", "sh", "-c", sh}, 300s);
  FullDiskRun out;
  out.err = r.out + r.err;
  out.timed_out = r.timed_out;
  static const std::regex status("exit status (\\d+)\\s*$");
  std::smatch m;
  if (r.status == 0 && std::regex_search(out.err, m, status)) out.status = std::stoi(m[1]);
  return out;
}

// ---- checkpoints ----------------------------------------------------------------------------

std::vector<std::string> names_in(const std::string& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const std::string& s : v) out += (out.empty() ? "" : " ") + s;
  return out;
}

// The line of `text` that holds every one of `parts`, or "".
std::string line_with_all(const std::string& text, const std::vector<std::string>& parts) {
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(begin, end - begin);
    if (std::all_of(parts.begin(), parts.end(), [&](const std::string& p) { return line.find(p) != std::string::npos; }))
      return line;
    begin = end + 1;
  }
  return "";
}

// How many lines of `text` hold `part`.
int lines_with(const std::string& text, const std::string& part) {
  int n = 0;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    if (end == std::string::npos) end = text.size();
    if (text.substr(begin, end - begin).find(part) != std::string::npos) ++n;
    begin = end + 1;
  }
  return n;
}

uint64_t round_up(uint64_t n, uint64_t to) { return (n + to - 1) / to * to; }

// ---- the test ---------------------------------------------------------------------------------

class DiskFull : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

TEST_P(DiskFull, StopsNamingTheFileKeepsEarlierCheckpointsAndResumesBitForBit) {
  if (bert_vocab().empty()) GTEST_FAIL() << "the suite could not learn a WordPiece vocabulary";
  const auto [name, np] = GetParam();
  const ModelCase m = model_case(name);
  const std::string what = name + " np " + std::to_string(np);
  TempDir dir;
  {
    std::string why;
    if (!can_mount_tmpfs(dir, &why))
      LOOM_SKIP_OR_FAIL("cannot mount a tmpfs in a private mount namespace here (unshare -m, mount -t tmpfs): " + why);
  }
  const auto t_start = Clock::now();
  auto secs = [](Clock::time_point a) { return std::chrono::duration<double>(Clock::now() - a).count(); };

  // 1. The reference, uninterrupted, on the ordinary disk.
  const std::string ref_dir = dir.file("ref");
  {
    RunResult r = run(train_cmd(m, np, ref_dir), 300s);
    expect_nothing_left(ref_dir, what + ", the reference run");
    ASSERT_FALSE(r.timed_out) << r.err;
    ASSERT_EQ(r.status, 0) << r.err;
  }
  const std::vector<int64_t> steps = checkpoint_steps(ref_dir + "/checkpoints");
  ASSERT_GE(steps.size(), 4u) << what << ": the reference run needs three checkpoints before its last";
  const std::vector<std::vector<float>> want_state = checkpoint_state(final_checkpoint(ref_dir));
  const std::map<int64_t, double> want_losses = step_losses(ref_dir);
  const std::string want_vectors = m.vectors ? read_file(ref_dir + "/vectors.txt") : "";
  uint64_t size = 0;   // S: the largest of the first three checkpoints
  for (size_t i = 0; i < 3; ++i)
    size = std::max<uint64_t>(size, fs::file_size(ref_dir + "/checkpoints/" + checkpoint_name(steps[i])));
  const double t_ref = secs(t_start);

  // 2. No room for any checkpoint: the first write fails and says how much it reserves.
  uint64_t reserved = 0;   // R
  {
    const std::string run_dir = dir.file("none"), mnt = dir.file("none_mnt"), copy = dir.file("none_copy");
    const std::string tmp = mnt + "/" + checkpoint_name(steps[0]) + ".tmp";
    FullDiskRun r = run_on_small_disk(train_cmd(m, np, run_dir, {"--set", "checkpoint.dir=" + mnt}), mnt, 64 << 10, copy);
    expect_nothing_left(run_dir, what + ", the run with no room");
    ASSERT_FALSE(r.timed_out) << r.err;
    EXPECT_EQ(r.status, 1) << r.err;
    std::smatch got;
    const std::regex re("cannot reserve (\\d+) bytes for " + std::regex_replace(tmp, std::regex("[.^$|()\\[\\]{}*+?\\\\]"), "\\$&") +
                        ": No space left on device");
    ASSERT_TRUE(std::regex_search(r.err, got, re)) << what << ": no message names " << tmp << " and the full disk:\n"
                                                   << r.err;
    reserved = std::stoull(got[1]);
    EXPECT_GE(reserved, size) << "the reservation is smaller than the file";
    EXPECT_EQ(names_in(copy), std::vector<std::string>{}) << what << ": the failed first write left files";
    EXPECT_NE(line_with_all(r.err, {"no checkpoint was written before"}), "") << r.err;
  }
  const double t_none = secs(t_start) - t_ref;

  // 3. Room for two checkpoints: the third write fails.
  const uint64_t disk = round_up(reserved + size + size / 2 + 2 * kPage, kPage);
  ASSERT_GT(size, 4 * kPage) << "the checkpoint is too small for Note [Sizing the full disk]";
  const std::string run_dir = dir.file("run"), mnt = dir.file("mnt"), copy = dir.file("copy");
  const std::string first = copy + "/" + checkpoint_name(steps[0]), second = copy + "/" + checkpoint_name(steps[1]);
  {
    const std::string tmp = mnt + "/" + checkpoint_name(steps[2]) + ".tmp";
    FullDiskRun r = run_on_small_disk(train_cmd(m, np, run_dir, {"--set", "checkpoint.dir=" + mnt}), mnt, disk, copy);
    expect_nothing_left(run_dir, what + ", the run on the small disk");
    ASSERT_FALSE(r.timed_out) << r.err;
    EXPECT_EQ(r.status, 1) << what << ": expected exit status 1 (checkpoint.on_error = \"stop\"):\n" << r.err;
    // One line says: no space, the file being written, the newest checkpoint, what to do.
    const std::string line = line_with_all(
        r.err, {"No space left on device", tmp, "the newest complete checkpoint is " + mnt + "/" +
                                                      checkpoint_name(steps[1]),
                "--resume auto", "checkpoint.dir"});
    EXPECT_NE(line, "") << what << ": no line names the full disk, " << tmp
                        << ", the newest checkpoint and what to do:\n" << r.err;
    EXPECT_EQ(r.err.find("MPI_ABORT"), std::string::npos) << r.err;
    // Every rank reached the same error: it is printed once, not once per rank.
    EXPECT_EQ(lines_with(r.err, "No space left on device"), 1) << what << ":\n" << r.err;
    std::printf("%s, disk of %llu bytes (R %llu, S %llu):\n  %s\n", what.c_str(), static_cast<unsigned long long>(disk),
                static_cast<unsigned long long>(reserved), static_cast<unsigned long long>(size), line.c_str());
    // The two earlier checkpoints, `latest` naming the second, nothing else.
    EXPECT_EQ(names_in(copy), (std::vector<std::string>{"latest", checkpoint_name(steps[0]), checkpoint_name(steps[1])}))
        << what << ": the small disk holds " << joined(names_in(copy));
    EXPECT_EQ(read_file(copy + "/latest"), checkpoint_name(steps[1]) + "\n");
    for (size_t i = 0; i < 2; ++i) {
      const std::string path = i == 0 ? first : second;
      RunResult inspect = run({loom_binary(), "inspect", path}, 60s);
      EXPECT_EQ(inspect.status, 0) << path << ":\n" << inspect.out << inspect.err;
      EXPECT_EQ(inspect.out.find("DAMAGED"), std::string::npos) << inspect.out;
      EXPECT_NE(inspect.out.find("model_kind " + name + ", step " + std::to_string(steps[i]) + ","), std::string::npos)
          << path << " is not the " << name << " checkpoint of step " << steps[i] << ":\n" << inspect.out;
    }
    // They are the reference's checkpoints of those steps, bit for bit.
    for (size_t i = 0; i < 2; ++i) {
      expect_equal_state(checkpoint_state(copy + "/" + checkpoint_name(steps[i])),
                         checkpoint_state(ref_dir + "/checkpoints/" + checkpoint_name(steps[i])),
                         what + ", " + checkpoint_name(steps[i]));
    }
  }
  const double t_full = secs(t_start) - t_ref - t_none;

  // 4. Room made: the checkpoints on an ordinary disk, resumed there.
  {
    RunResult r = run(train_cmd(m, np, run_dir, {"--set", "checkpoint.dir=" + copy, "--resume", "auto"}), 300s);
    expect_nothing_left(run_dir, what + ", the resumed run");
    ASSERT_FALSE(r.timed_out) << r.err;
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find("resumed from " + second + " after step " + std::to_string(steps[1]) + " "), std::string::npos)
        << r.err;
    const std::string latest = read_file(copy + "/latest");
    EXPECT_EQ(latest, checkpoint_name(steps.back()) + "\n");
    expect_equal_state(checkpoint_state(copy + "/" + latest.substr(0, latest.find('\n'))), want_state, what);
    const std::map<int64_t, double> got = step_losses(run_dir);
    for (int64_t s = steps[1]; s < static_cast<int64_t>(want_losses.size()); ++s) {
      ASSERT_TRUE(got.count(s)) << what << ": no metrics for step " << s;
      EXPECT_EQ(got.at(s), want_losses.at(s)) << what << ", step " << s;
    }
    if (m.vectors) {
      EXPECT_EQ(read_file(run_dir + "/vectors.txt"), want_vectors) << what << ": vectors.txt differs";
    }
  }
  const double t_resume = secs(t_start) - t_ref - t_none - t_full;

  // 5. The disk fills while `latest` is rewritten (Note [A latest that cannot be written] in
  //    io/checkpoint_write.cpp): the second checkpoint's step file is whole, `latest` still
  //    names the first, and --resume auto resumes from the first, bit for bit.
  {
    const std::string run5 = dir.file("latest_run"), mnt5 = dir.file("latest_mnt"), copy5 = dir.file("latest_copy");
    const std::string log5 = dir.file("latest_run.log");
    fs::create_directories(mnt5);
    std::string sh = "mount -t tmpfs -o size=" + std::to_string(round_up(4 * reserved + 8 * size, kPage)) + " tmpfs " +
                     quoted(mnt5) + " || { echo 'mount failed' >&2; exit 97; };" +
                     " : >" + quoted(log5) + ";" +   // before the job starts: the loop below reads it
                     " LOOM_FAULT_CHECKPOINT_PAUSE_MS=" + std::to_string(kLatestWindowMs) +
                     " LOOM_FAULT_CHECKPOINT_PHASE=latest";
    for (const std::string& a : train_cmd(m, np, run5, {"--set", "checkpoint.dir=" + mnt5})) sh += " " + quoted(a);
    // The disk is filled on the event (the second pause at `latest`), inside its window.
    sh += " 2>" + quoted(log5) + " & pid=$!;" +
          " while kill -0 $pid 2>/dev/null && [ \"$(grep -c 'paused at latest of' " + quoted(log5) + ")\" -lt 2 ];" +
          " do sleep 0.05; done;" +
          " dd if=/dev/zero of=" + quoted(mnt5 + "/filler") + " bs=64k 2>/dev/null;" +
          " wait $pid; s=$?; rm -f " + quoted(mnt5 + "/filler") + "; mkdir -p " + quoted(copy5) + " && cp -a " +
          quoted(mnt5 + "/.") + " " + quoted(copy5) + "; echo \"exit status $s\" >&2; exit 0";
    RunResult r = run({"unshare", "-m", "sh", "-c", sh}, 300s);
    const std::string err = read_file(log5) + r.out + r.err;
    expect_nothing_left(run5, what + ", the run whose `latest` could not be written");
    ASSERT_FALSE(r.timed_out) << err;
    ASSERT_EQ(r.status, 0) << err;
    EXPECT_NE(err.find("exit status 1"), std::string::npos) << what << ": expected exit status 1:\n" << err;
    const std::string line = line_with_all(
        err, {"cannot write " + mnt5 + "/latest.tmp: No space left on device",
              mnt5 + "/" + checkpoint_name(steps[1]) + " was written whole",
              "still names " + checkpoint_name(steps[0]) + ", so --resume auto resumes from that",
              "--resume " + mnt5 + "/" + checkpoint_name(steps[1]) + " resumes from step " + std::to_string(steps[1])});
    EXPECT_NE(line, "") << what << ": no line says that `latest` could not be written and what each resume takes:\n"
                        << err;
    EXPECT_EQ(lines_with(err, "No space left on device"), 1) << what << ": printed more than once:\n" << err;
    // The step file is whole: the line must not also say the run stopped without it.
    EXPECT_EQ(line.find("without this checkpoint"), std::string::npos) << what << ": the line contradicts itself:\n"
                                                                        << line;
    EXPECT_NE(line.find("training stopped after step " + std::to_string(steps[1])), std::string::npos)
        << what << ": the line does not say where training stopped:\n" << line;
    std::printf("%s, disk full at latest:\n  %s\n", what.c_str(), line.c_str());
    EXPECT_EQ(names_in(copy5), (std::vector<std::string>{"latest", checkpoint_name(steps[0]), checkpoint_name(steps[1])}))
        << what << ": the disk holds " << joined(names_in(copy5));
    EXPECT_EQ(read_file(copy5 + "/latest"), checkpoint_name(steps[0]) + "\n");
    expect_equal_state(checkpoint_state(copy5 + "/" + checkpoint_name(steps[1])),
                       checkpoint_state(ref_dir + "/checkpoints/" + checkpoint_name(steps[1])),
                       what + ", the step file whose latest failed");
    RunResult resumed = run(train_cmd(m, np, run5, {"--set", "checkpoint.dir=" + copy5, "--resume", "auto"}), 300s);
    expect_nothing_left(run5, what + ", the run resumed after `latest` failed");
    ASSERT_FALSE(resumed.timed_out) << resumed.err;
    ASSERT_EQ(resumed.status, 0) << resumed.err;
    EXPECT_NE(resumed.err.find("resumed from " + copy5 + "/" + checkpoint_name(steps[0]) + " after step " +
                               std::to_string(steps[0]) + " "),
              std::string::npos)
        << resumed.err;
    const std::string latest = read_file(copy5 + "/latest");
    EXPECT_EQ(latest, checkpoint_name(steps.back()) + "\n");
    expect_equal_state(checkpoint_state(copy5 + "/" + latest.substr(0, latest.find('\n'))), want_state,
                       what + ", resumed after `latest` failed");
  }
  std::printf("%s: reference %.1f s, no room %.1f s, full at the third checkpoint %.1f s, resume %.1f s, "
              "full at latest %.1f s\n",
              what.c_str(), t_ref, t_none, t_full, t_resume, secs(t_start) - t_ref - t_none - t_full - t_resume);
}

std::string case_name(const ::testing::TestParamInfo<std::tuple<std::string, int>>& info) {
  return std::get<0>(info.param) + "_np" + std::to_string(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Models, DiskFull,
                         ::testing::Combine(::testing::Values("glove", "word2vec", "gpt", "bert"),
                                            ::testing::Values(1, 2)),
                         case_name);

}  // namespace
}  // namespace loom::test
