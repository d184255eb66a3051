// Issue 20's defects found by using loom as a hostile user would, each tried on the real
// binary (`loom train` as a subprocess, under mpirun where the defect is about ranks):
// a truncated .gz corpus, a non-finite setting or loss, a checkpoint with a dataset
// deleted, a new run in a used run directory, ... Each test first shows the intact case succeeds, so that the
// failure it then expects is the defect's and not the setup's.
#include <gtest/gtest.h>
#include <hdf5.h>
#include <signal.h>
#include <zlib.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/checkpoint_state.h"
#include "tests/support/test_support.h"

namespace loom::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string kGlove = std::string(LOOM_SOURCE_DIR) + "/examples/glove.toml";

// `loom train examples/glove.toml` (one short epoch) into run_dir with extra overrides.
RunResult train_glove(int np, const std::string& run_dir, const std::vector<std::string>& sets) {
  std::vector<std::string> args = {"train", kGlove, "--set", "run.dir=" + run_dir,
                                   "--set", "glove.epochs=1", "--set", "eval.every_epochs=0",
                                   "--set", "progress.interval_s=30"};
  for (const std::string& s : sets) args.insert(args.end(), {"--set", s});
  return run(loom_cmd(np, args), 300s);
}

// A planted corpus of `sentences` lines written by `loom generate-corpus`.
std::string planted_text(const TempDir& dir, int sentences) {
  const std::string path = dir.file("planted.txt");
  RunResult g = run({loom_binary(), "generate-corpus", path, "--sentences", std::to_string(sentences)}, 60s);
  if (g.status != 0) throw std::runtime_error("generate-corpus failed: " + g.out + g.err);
  return read_file(path);
}

void write_gzip(const std::string& path, const std::string& text) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr) << path;
  ASSERT_EQ(gzwrite(f, text.data(), static_cast<unsigned>(text.size())), static_cast<int>(text.size()));
  ASSERT_EQ(gzclose(f), Z_OK);
}

std::string corpus_paths(const std::string& path) {
  return "corpus.paths=[\"" + path + "\"]";
}

// ---- a truncated .gz corpus ----------------------------------------------------------

// Half of a gzip file used to train with exit 0 and no warning: gzread returns what it
// decoded when the file ends mid-stream. Now the whole .gz trains, and the first half of
// it (cut inside the deflate data, and cut inside the 8-byte trailer) is an error naming
// the file and saying it is truncated, from `loom train` at np 1 and from `loom vocab`.
TEST(TruncatedGzip, IsAnErrorNamingTheFile) {
  TempDir dir;
  const std::string text = planted_text(dir, 4000);
  const std::string whole = dir.file("corpus.txt.gz");
  write_gzip(whole, text);
  const std::string packed = read_file(whole);
  ASSERT_GT(packed.size(), 1000u);

  RunResult ok = train_glove(1, dir.file("run-whole"), {"corpus.synthetic=false", corpus_paths(whole)});
  ASSERT_FALSE(ok.timed_out);
  ASSERT_EQ(ok.status, 0) << ok.out << ok.err;

  const std::string half = dir.file("half.txt.gz");
  write_file(half, packed.substr(0, packed.size() / 2));
  RunResult r = train_glove(1, dir.file("run-half"), {"corpus.synthetic=false", corpus_paths(half)});
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_NE(r.err.find(half), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("truncated"), std::string::npos) << r.err;
  EXPECT_FALSE(fs::exists(dir.file("run-half/vectors.txt")));

  // Everything but the last byte of the trailer (CRC-32 and length): all the text decodes,
  // only the check of the stream's end is missing.
  const std::string no_trailer = dir.file("no-trailer.txt.gz");
  write_file(no_trailer, packed.substr(0, packed.size() - 1));
  RunResult v = run(loom_cmd(1, {"vocab", kGlove, "--set", "run.dir=" + dir.file("run-vocab"), "--set",
                                 "corpus.synthetic=false", "--set", corpus_paths(no_trailer)}),
                    120s);
  EXPECT_EQ(v.status, 1) << v.out << v.err;
  EXPECT_NE(v.err.find(no_trailer), std::string::npos) << v.err;
  EXPECT_NE(v.err.find("truncated"), std::string::npos) << v.err;
}

// ---- non-finite settings and a diverging loss ------------------------------------------

// glove.eta = inf passed "> 0" and trained to NaN with exit 0. Every real key now refuses
// inf and nan (exit 2 naming the key), in an engine section as in a model's.
TEST(NonFinite, SettingsAreRefusedNamingTheKey) {
  TempDir dir;
  for (const std::string set : {"glove.eta=inf", "glove.eta=nan", "glove.x_max=-inf", "progress.interval_s=inf"}) {
    RunResult r = train_glove(1, dir.file("run"), {set});
    ASSERT_FALSE(r.timed_out);
    EXPECT_EQ(r.status, 2) << set << "\n" << r.err;
    const std::string key = set.substr(0, set.find('='));
    EXPECT_NE(r.err.find("'" + key + "'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("finite"), std::string::npos) << r.err;
    EXPECT_FALSE(fs::exists(dir.file("run/metrics.jsonl"))) << set;
  }
}

std::vector<int64_t> checkpoint_steps(const std::string& dir) {
  std::vector<int64_t> steps;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    std::smatch m;
    const std::string name = e.path().filename().string();
    if (std::regex_match(name, m, std::regex("step_(\\d+)\\.h5"))) steps.push_back(std::stoll(m[1]));
  }
  std::sort(steps.begin(), steps.end());
  return steps;
}

// A finite but absurd step size (and no clipping) makes the loss overflow within a few
// steps: the run stops with exit 1 naming the step, writes no checkpoint at or after it
// and no vectors, at np 1 and 2 (every rank sees every loss, so none waits for the others).
TEST(NonFinite, DivergingLossStopsWithoutACheckpointOfIt) {
  for (int np : {1, 2}) {
    TempDir dir;
    const std::string run_dir = dir.file("run");
    RunResult r = train_glove(np, run_dir, {"glove.eta=1e30", "glove.grad_clip=1e300", "checkpoint.every_steps=1",
                                             "checkpoint.keep_last=1000"});
    ASSERT_FALSE(r.timed_out);
    EXPECT_EQ(r.status, 1) << "np " << np << "\n" << r.out << r.err;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(r.err, m, std::regex("training diverged: the loss of rank \\d+ at step (\\d+)")))
        << r.err;
    const int64_t bad_step = std::stoll(m[1]);
    for (int64_t s : checkpoint_steps(run_dir + "/checkpoints"))
      EXPECT_LE(s, bad_step) << "a checkpoint after step " << s << " holds the diverged state";
    EXPECT_FALSE(fs::exists(run_dir + "/vectors.txt"));
  }
}

// ---- a checkpoint with a dataset deleted ----------------------------------------------

// Deletes `dataset` (and, when `listing` is false, the root attribute "datasets" that
// lists the file's datasets) from the checkpoint at `path`, as h5py's `del` would.
void delete_from_checkpoint(const std::string& path, const std::string& dataset, bool keep_listing) {
  hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0) << path;
  EXPECT_GE(H5Ldelete(f, dataset.c_str(), H5P_DEFAULT), 0) << dataset;
  if (!keep_listing) {
    EXPECT_GE(H5Adelete(f, "datasets"), 0);
  }
  ASSERT_GE(H5Fclose(f), 0);
}

std::string newest_checkpoint(const std::string& dir) {
  const std::vector<int64_t> steps = checkpoint_steps(dir);
  if (steps.empty()) return "";
  char name[32];
  std::snprintf(name, sizeof name, "step_%08lld.h5", static_cast<long long>(steps.back()));
  return dir + "/" + name;
}

// Used to: `loom inspect` said OK and `--resume auto` picked the file, then failed with
// exit 1. Now inspect names the missing dataset (exit 1), and --resume auto skips the file
// with a warning naming it and resumes from the previous checkpoint - also when the
// dataset listing was deleted too (the model's own list of what it saves decides then).
TEST(DeletedDataset, InspectRefusesAndAutoResumeFallsBack) {
  TempDir dir;
  const std::string run_dir = dir.file("run");
  const std::string ckpt = run_dir + "/checkpoints";
  RunResult first = train_glove(1, run_dir, {"checkpoint.every_steps=2", "checkpoint.keep_last=1000"});
  ASSERT_EQ(first.status, 0) << first.err;
  std::vector<int64_t> steps = checkpoint_steps(ckpt);
  ASSERT_GE(steps.size(), 3u);
  const std::string newest = newest_checkpoint(ckpt);

  RunResult ok = run({loom_binary(), "inspect", newest}, 60s);
  ASSERT_EQ(ok.status, 0) << ok.out << ok.err;

  struct Case { const char* dataset; bool keep_listing; };
  for (const Case& c : {Case{"/model/W_ctx", true}, Case{"/optimizer/b/gradsq", false}}) {
    SCOPED_TRACE(c.dataset);
    const std::string victim = newest_checkpoint(ckpt);
    const int64_t victim_step = checkpoint_steps(ckpt).back();
    delete_from_checkpoint(victim, c.dataset, c.keep_listing);
    if (c.keep_listing) {
      RunResult bad = run({loom_binary(), "inspect", victim}, 60s);
      EXPECT_EQ(bad.status, 1) << bad.out << bad.err;
      EXPECT_NE((bad.out + bad.err).find(std::string(c.dataset) + "  -"), std::string::npos) << bad.out;
      EXPECT_NE(bad.out.find("missing"), std::string::npos) << bad.out;
      EXPECT_EQ(bad.out.find("status: OK"), std::string::npos) << bad.out;
    }
    // Two epochs: the run continues from the checkpoint before the damaged one.
    RunResult resumed = run(loom_cmd(1, {"train", kGlove, "--set", "run.dir=" + run_dir, "--set", "glove.epochs=2",
                                         "--set", "eval.every_epochs=0", "--set", "checkpoint.every_steps=0",
                                         "--set", "checkpoint.at_end=false", "--resume", "auto"}),
                            300s);
    ASSERT_FALSE(resumed.timed_out);
    EXPECT_EQ(resumed.status, 0) << resumed.err;
    EXPECT_NE(resumed.err.find("skipping damaged checkpoint"), std::string::npos) << resumed.err;
    EXPECT_NE(resumed.err.find(victim), std::string::npos) << resumed.err;
    EXPECT_NE(resumed.err.find(c.dataset), std::string::npos) << resumed.err;
    std::smatch m;
    ASSERT_TRUE(std::regex_search(resumed.err, m, std::regex("resumed from \\S+ after step (\\d+)"))) << resumed.err;
    EXPECT_LT(std::stoll(m[1]), victim_step);
    fs::remove(victim);   // the next case damages the checkpoint before it
    fs::remove(ckpt + "/latest");
  }
}

// ---- checkpoint errors in a sentence ---------------------------------------------------

// A damaged checkpoint's error was loom's place plus HDF5's call, loom's source line and
// HDF5's whole error stack ("HDF5 call failed: H5Fopen(path.c_str(), ...) at io/h5.cpp:372
// [H5F__super_read: truncated file: eof = ... <- H5F_open: ...]"). Now `loom inspect` and
// `loom train --resume FILE` say where, what and why in words (Note [HDF5 errors in a
// sentence] in io/h5.cpp), and nothing of HDF5's internals reaches the terminal.
TEST(CheckpointErrors, AreASentenceWithoutHdf5Internals) {
  TempDir dir;
  const std::string run_dir = dir.file("run");
  RunResult first = train_glove(1, run_dir, {"checkpoint.every_steps=2", "checkpoint.keep_last=1000"});
  ASSERT_EQ(first.status, 0) << first.err;
  const std::string newest = newest_checkpoint(run_dir + "/checkpoints");
  const std::string bytes = read_file(newest);
  ASSERT_GT(bytes.size(), 4096u);

  const std::string truncated = dir.file("truncated.h5"), empty = dir.file("empty.h5"), metadata = dir.file("metadata.h5");
  write_file(truncated, bytes.substr(0, bytes.size() / 2));
  write_file(empty, "");
  std::string scrambled = bytes;   // the superblock's version and sizes, after the 8-byte signature
  for (size_t i = 8; i < 24; ++i) scrambled[i] = static_cast<char>(scrambled[i] ^ 0x5a);
  write_file(metadata, scrambled);
  struct Case {
    std::string path, why;
  };
  for (const Case& c : {Case{truncated, "cannot open the file: the file is truncated: " +
                                            std::to_string(bytes.size() / 2) + " of its " +
                                            std::to_string(bytes.size()) + " bytes are there"},
                        Case{empty, "cannot open the file: it is not an HDF5 file"},
                        Case{metadata, "cannot open the file: the file is damaged"}}) {
    SCOPED_TRACE(c.path);
    RunResult inspected = run({loom_binary(), "inspect", c.path}, 60s);
    RunResult resumed = run(loom_cmd(1, {"train", kGlove, "--set", "run.dir=" + dir.file("resumed"), "--set",
                                         "glove.epochs=1", "--set", "eval.every_epochs=0", "--resume", c.path}),
                            120s);
    for (const RunResult* r : {&inspected, &resumed}) {
      const std::string all = r->out + r->err;
      EXPECT_EQ(r->status, 1) << all;
      EXPECT_NE(all.find(c.path + " (opening): " + c.why), std::string::npos) << all;
      for (const char* internal : {"HDF5-DIAG", "H5F", "H5C", "h5.cpp", "HDF5 call failed"})
        EXPECT_EQ(all.find(internal), std::string::npos) << internal << " in:\n" << all;
    }
  }
}

// ---- an error every rank reaches, at two ranks -----------------------------------------

size_t count_of(const std::string& text, const std::string& part) {
  size_t n = 0;
  for (size_t p = text.find(part); p != std::string::npos; p = text.find(part, p + 1)) ++n;
  return n;
}

// At two ranks an error every rank hits after MPI is up was printed by each rank and ended
// with Open MPI's "MPI_ABORT was invoked on rank ..." banner. Now rank 0 prints it once,
// naming itself, and every rank ends normally with loom's exit status (Note [An error every
// rank reaches] in dist/mpi_communicator.h): a new run in a used run directory (a config
// error, 2) and a truncated checkpoint given to --resume (an I/O error, 1).
TEST(ErrorAtTwoRanks, IsPrintedOnceWithoutMpiAbort) {
  TempDir dir;
  const std::string run_dir = dir.file("run");
  RunResult first = train_glove(1, run_dir, {"checkpoint.every_steps=2", "checkpoint.keep_last=1000"});
  ASSERT_EQ(first.status, 0) << first.err;
  const std::string newest = newest_checkpoint(run_dir + "/checkpoints");
  const std::string truncated = dir.file("truncated.h5");
  const std::string bytes = read_file(newest);
  write_file(truncated, bytes.substr(0, bytes.size() / 2));

  struct Case {
    std::vector<std::string> sets;
    std::vector<std::string> extra;
    std::string text;
    int status;
  };
  for (const Case& c : {Case{{}, {}, "holds an earlier run", 2},
                        Case{{"run.dir=" + dir.file("resumed")}, {"--resume", truncated},
                             truncated + " (opening): cannot open the file: the file is truncated", 1}}) {
    SCOPED_TRACE(c.text);
    std::vector<std::string> args = {"train", kGlove, "--set", "run.dir=" + run_dir, "--set", "glove.epochs=1",
                                     "--set", "eval.every_epochs=0"};
    for (const std::string& set : c.sets) args.insert(args.end(), {"--set", set});
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    RunResult r = run(loom_cmd(2, args), 120s);
    ASSERT_FALSE(r.timed_out);
    const std::string all = r.out + r.err;
    EXPECT_EQ(r.status, c.status) << all;
    EXPECT_EQ(count_of(all, c.text), 1u) << all;
    EXPECT_NE(all.find("[r0/2][train] error: "), std::string::npos) << all;
    EXPECT_NE(all.find("(on every rank)"), std::string::npos) << all;
    EXPECT_EQ(all.find("MPI_ABORT"), std::string::npos) << all;
    EXPECT_EQ(all.find("ending the job"), std::string::npos) << all;
  }
}

// ---- a new run in a used run directory -------------------------------------------------

// Used to: the second run appended to metrics.jsonl from step 0 and retention deleted its
// own checkpoints in favour of the older run's. Now it is refused (exit 2) naming the
// directory and what to do, and leaves the earlier run's files as they were; --resume
// auto continues it, and another run.dir starts afresh.
TEST(UsedRunDir, ANewRunThereIsRefused) {
  TempDir dir;
  const std::string run_dir = dir.file("run");
  RunResult first = train_glove(1, run_dir, {"checkpoint.every_steps=10"});
  ASSERT_EQ(first.status, 0) << first.err;
  const std::string metrics = read_file(run_dir + "/metrics.jsonl");
  const std::vector<int64_t> steps = checkpoint_steps(run_dir + "/checkpoints");
  ASSERT_FALSE(steps.empty());
  const auto newest_time = fs::last_write_time(newest_checkpoint(run_dir + "/checkpoints"));

  RunResult again = train_glove(1, run_dir, {"checkpoint.every_steps=10"});
  ASSERT_FALSE(again.timed_out);
  EXPECT_EQ(again.status, 2) << again.err;
  EXPECT_NE(again.err.find(run_dir), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("earlier run"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("--resume auto"), std::string::npos) << again.err;
  EXPECT_NE(again.err.find("run.dir"), std::string::npos) << again.err;
  EXPECT_EQ(read_file(run_dir + "/metrics.jsonl"), metrics);
  EXPECT_EQ(checkpoint_steps(run_dir + "/checkpoints"), steps);
  EXPECT_EQ(fs::last_write_time(newest_checkpoint(run_dir + "/checkpoints")), newest_time);

  // Metrics alone (checkpoints off) are an earlier run too; at np 2 every rank refuses.
  fs::remove_all(run_dir + "/checkpoints");
  RunResult two = train_glove(2, run_dir, {"checkpoint.every_steps=10"});
  EXPECT_EQ(two.status, 2) << two.err;
  EXPECT_NE(two.err.find("metrics.jsonl"), std::string::npos) << two.err;

  RunResult elsewhere = train_glove(1, dir.file("run2"), {});
  EXPECT_EQ(elsewhere.status, 0) << elsewhere.err;
}

// ---- the rate after a resume ----------------------------------------------------------

// Used to: after a resume the rate divided every update since step 0 by the seconds since
// the resume (1,238 M updates/s against ~5.7 M). eval.json's "updates" (what the rate
// divides) is now what this run trained: epoch 2 of a run resumed after epoch 1 counts
// what a fresh 2-epoch run counts minus its first epoch's (GloVe visits every non-zero
// once per epoch, so the figures are exact).
TEST(RateAfterResume, CountsOnlyThisRunsUpdates) {
  TempDir dir;
  RunResult whole = train_glove(1, dir.file("whole"), {"glove.epochs=2"});
  ASSERT_EQ(whole.status, 0) << whole.err;
  const int64_t two_epochs = nlohmann::json::parse(read_file(dir.file("whole/eval.json")))["updates"].get<int64_t>();

  const std::string run_dir = dir.file("resumed");
  RunResult first = train_glove(1, run_dir, {});
  ASSERT_EQ(first.status, 0) << first.err;
  const int64_t one_epoch = nlohmann::json::parse(read_file(run_dir + "/eval.json"))["updates"].get<int64_t>();
  ASSERT_GT(one_epoch, 0);
  EXPECT_EQ(2 * one_epoch, two_epochs);
  RunResult second = run(loom_cmd(1, {"train", kGlove, "--set", "run.dir=" + run_dir, "--set", "glove.epochs=2",
                                      "--set", "eval.every_epochs=0", "--resume", "auto"}),
                         300s);
  ASSERT_EQ(second.status, 0) << second.err;
  EXPECT_NE(second.err.find("resumed from"), std::string::npos) << second.err;
  const nlohmann::json e = nlohmann::json::parse(read_file(run_dir + "/eval.json"));
  EXPECT_EQ(e["updates"].get<int64_t>(), two_epochs - one_epoch);
  // The logged rate is updates / training seconds: no larger than this run's updates
  // over the training time eval.json reports.
  const double seconds = e["seconds"]["train"].get<double>();
  ASSERT_GT(seconds, 0);
  std::smatch m;
  ASSERT_TRUE(std::regex_search(second.err, m, std::regex("final loss [0-9.]+; ([0-9.]+) ?([kMG]?) updates/s")))
      << second.err;
  const double unit = m[2] == "G" ? 1e9 : m[2] == "M" ? 1e6 : m[2] == "k" ? 1e3 : 1;
  const double logged = std::stod(m[1]) * unit;
  EXPECT_NEAR(logged, static_cast<double>(two_epochs - one_epoch) / seconds, 0.06 * logged) << m[0];
}

// ---- NUL bytes inside tokens -----------------------------------------------------------

// Used to: "a\0b" stayed one token and went raw into vocab.txt and the vector files,
// uncounted. The UTF-8 policy now treats a NUL byte as an invalid sequence: an error
// naming file:byte, or U+FFFD counted with the replacements.
TEST(NulBytes, FollowTheUtf8Policy) {
  TempDir dir;
  std::string text = planted_text(dir, 500);
  const size_t at = text.find('\n') + 1;   // the second line starts "x\0y "
  text.insert(at, std::string("x\0y ", 4));
  const std::string corpus = dir.file("nul.txt");
  write_file(corpus, text);
  auto vocab = [&](const std::string& run_dir, const std::string& policy) {
    return run(loom_cmd(1, {"vocab", kGlove, "--set", "run.dir=" + run_dir, "--set", "corpus.synthetic=false",
                            "--set", corpus_paths(corpus), "--set", "corpus.utf8=" + policy}),
               120s);
  };
  RunResult strict = vocab(dir.file("strict"), "error");
  EXPECT_EQ(strict.status, 1) << strict.err;
  EXPECT_NE(strict.err.find("NUL byte at " + corpus + ":" + std::to_string(at + 1)), std::string::npos) << strict.err;

  RunResult lenient = vocab(dir.file("lenient"), "replace");
  ASSERT_EQ(lenient.status, 0) << lenient.err;
  const std::string words = read_file(dir.file("lenient/vocab.txt"));
  EXPECT_EQ(words.find('\0'), std::string::npos);
  EXPECT_NE(words.find("x\xEF\xBF\xBDy "), std::string::npos) << "no x U+FFFD y in vocab.txt";
  EXPECT_NE(lenient.err.find("1 invalid UTF-8 sequences and NUL bytes replaced"), std::string::npos) << lenient.err;
}

// ---- thread limits --------------------------------------------------------------------

// Used to: word2vec.threads = 4096 was inside the range `config --describe` printed but
// train refused it naming another key; glove.threads = 10000 started 10,000 threads. Every
// threads key now has one range, [0, 256]: describe prints it, the loader refuses a value
// beyond it naming the key that was set, and 256 itself loads.
TEST(ThreadLimits, OneRangeNamingTheKeySet) {
  RunResult d = run({loom_binary(), "config", "--describe"}, 60s);
  ASSERT_EQ(d.status, 0) << d.err;
  for (const std::string key : {"run.threads", "glove.threads", "word2vec.threads"}) {
    SCOPED_TRACE(key);
    const size_t at = d.out.find(key);
    ASSERT_NE(at, std::string::npos) << d.out;
    const std::string row = d.out.substr(at, d.out.find('\n', at) - at);
    EXPECT_NE(row.find("256"), std::string::npos) << row;
    RunResult ok = run({loom_binary(), "config", kGlove, "--set", key + "=256"}, 60s);
    EXPECT_EQ(ok.status, 0) << ok.err;
    for (const char* value : {"257", "4096", "10000"}) {
      RunResult r = run({loom_binary(), "config", kGlove, "--set", key + "=" + value}, 60s);
      EXPECT_EQ(r.status, 2) << value << "\n" << r.out << r.err;
      EXPECT_NE(r.err.find("'" + key + "'"), std::string::npos) << r.err;
    }
  }
  // And `loom train` itself refuses before starting anything.
  TempDir dir;
  RunResult t = train_glove(1, dir.file("run"), {"glove.threads=10000"});
  EXPECT_EQ(t.status, 2) << t.err;
  EXPECT_NE(t.err.find("'glove.threads'"), std::string::npos) << t.err;
  EXPECT_FALSE(fs::exists(dir.file("run/metrics.jsonl")));
}

// ---- the checkpoint's space reservation -------------------------------------------------

// Used to: 2.50 MB reserved for a 1.24 MB checkpoint, so a disk with room for the file
// reported it full. ckpt_tool (tests/io) writes a checkpoint under a file size limit
// (RLIMIT_FSIZE: a write past it fails with EFBIG as a full disk fails with ENOSPC): with
// the limit 30 % above the final size of the 1.24 MB file, and 3 % above a 16 MB
// one, the write succeeds; 10 % below, it fails cleanly naming the file and leaves no
// .tmp behind.
TEST(CheckpointReservation, FitsWhereTheFileFits) {
  const char* tool = std::getenv("LOOM_CKPT_TOOL");
  ASSERT_NE(tool, nullptr) << "LOOM_CKPT_TOOL is not set (run through ctest)";
  struct Case { const char* floats; double slack; };
  for (const Case& c : {Case{"310000", 1.30}, Case{"4000000", 1.03}}) {
    SCOPED_TRACE(c.floats);
    TempDir dir;
    RunResult free_run = run({tool, dir.path(), "step_1", c.floats, "1"}, 120s);
    ASSERT_EQ(free_run.status, 0) << free_run.out << free_run.err;
    const uint64_t size = fs::file_size(dir.file("step_1.h5"));
    const auto limit = [&](double f) { return std::to_string(static_cast<uint64_t>(f * static_cast<double>(size))); };
    RunResult fits = run({tool, dir.path(), "step_2", c.floats, "2", limit(c.slack)}, 120s);
    EXPECT_EQ(fits.status, 0) << "file " << size << " B, limit " << limit(c.slack) << "\n" << fits.out << fits.err;
    EXPECT_EQ(fs::file_size(dir.file("step_2.h5")), size);
    RunResult full = run({tool, dir.path(), "step_3", c.floats, "3", limit(0.9)}, 120s);
    EXPECT_EQ(full.status, 1) << full.out << full.err;
    EXPECT_NE((full.out + full.err).find("step_3.h5"), std::string::npos) << full.out << full.err;
    EXPECT_FALSE(fs::exists(dir.file("step_3.h5")));
    EXPECT_FALSE(fs::exists(dir.file("step_3.h5.tmp")));
  }
}

// ---- stop signals under mpirun ------------------------------------------------------------

// Waits until `path` holds at least one line (the first metrics line: training runs), or
// `p` ended, or a minute passed.
bool wait_for_metrics(const std::string& path, Process& p) {
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  while (std::chrono::steady_clock::now() < deadline && p.running()) {
    if (read_file(path).find('\n') != std::string::npos) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

// `mpirun -np 2 loom train` (a long GloVe run) signalled once training runs: the stop
// checkpoint is written and mpirun's exit status is what a job script must see. A signal
// to a rank (SIGTERM, SIGINT) stops every rank after the same step; the ranks exit
// 128 + N and mpirun passes that on (143, 130). mpirun forwards SIGUSR1 to the ranks:
// 138. SIGTERM to mpirun itself: Open MPI 4.1's mpirun ends the job on its own and exits
// 1 whatever the ranks return (README, "Stopping": the reason for `loom mpirun`, whose
// signals tests/fault/launcher_test.cpp tries); the ranks still write the stop checkpoint.
TEST(StopSignals, MpirunReturnsTheStatusOfTheStop) {
  struct Case { int sig; bool to_mpirun; int expected; };
  for (const Case& c : {Case{SIGTERM, false, 143}, Case{SIGINT, false, 130}, Case{SIGUSR1, true, 138},
                        Case{SIGTERM, true, 1}}) {
    SCOPED_TRACE(std::string(strsignal(c.sig)) + (c.to_mpirun ? " to mpirun" : " to rank 1"));
    TempDir dir;
    const std::string run_dir = dir.file("run");
    Process p(loom_cmd(2, {"train", kGlove, "--set", "run.dir=" + run_dir, "--set", "glove.epochs=2000",
                           "--set", "eval.every_epochs=0", "--set", "progress.interval_s=30"}));
    ASSERT_TRUE(wait_for_metrics(run_dir + "/metrics.jsonl", p)) << p.err();
    if (c.to_mpirun) {
      p.signal(c.sig);
    } else {
      const std::vector<pid_t> ranks = descendants_named(p.pid(), "loom");
      ASSERT_EQ(ranks.size(), 2u) << describe_descendants(p.pid());
      ASSERT_EQ(::kill(ranks.back(), c.sig), 0);
    }
    ASSERT_TRUE(p.wait_for(120s)) << "the job did not end; still running: " << describe_descendants(p.pid())
                                  << "\n" << p.err();
    const std::string err = p.err();
    const std::string said = "stop requested (signal " + std::to_string(c.sig) + "): all ranks stopped after step ";
    const size_t at = err.find(said);
    ASSERT_NE(at, std::string::npos) << err;
    // The stop checkpoint is on disk and `latest` names it. Not its log line: a bare mpirun
    // sent SIGTERM tears down its output forwarding while rank 0 still writes, so the
    // "wrote ... (stop request" line may never reach this pipe (seen under load).
    const int64_t stopped = std::atoll(err.c_str() + at + said.size());
    const std::vector<int64_t> steps = checkpoint_steps(run_dir + "/checkpoints");
    EXPECT_FALSE(steps.empty() || steps.back() != stopped) << "no stop checkpoint of step " << stopped << ":\n" << err;
    EXPECT_EQ(final_step(run_dir), stopped) << "latest does not name the stop checkpoint of step " << stopped;
    EXPECT_EQ(p.exit_status(), c.expected) << err;
  }
}

// ---- a token longer than the read buffer -------------------------------------------------

// Used to: with corpus.max_token_bytes = 0 ("no limit") a 50 MB token became twelve 4 MiB
// "words" in vocab.txt and the vectors, without a word. A 6 MB token (longer than the
// 4 MiB read buffer) is now an error naming file:byte without a limit, and with one it is
// ONE token truncated to the limit, counted and reported, at np 1 and 2 (`loom train`).
TEST(LongToken, IsAnErrorOrOneCountedTruncation) {
  TempDir dir;
  const std::string text = planted_text(dir, 2000);
  const size_t at = text.size() / 2 + text.substr(text.size() / 2).find('\n') + 1;
  const std::string corpus = dir.file("long.txt");
  write_file(corpus, text.substr(0, at) + std::string(6u << 20, 'z') + "\n" + text.substr(at));
  const std::vector<std::string> data = {"corpus.synthetic=false", corpus_paths(corpus)};

  RunResult strict = train_glove(1, dir.file("strict"), data);
  EXPECT_EQ(strict.status, 1) << strict.err;
  EXPECT_NE(strict.err.find("token longer than"), std::string::npos) << strict.err;
  EXPECT_NE(strict.err.find(corpus + ":" + std::to_string(at)), std::string::npos) << strict.err;
  EXPECT_NE(strict.err.find("corpus.max_token_bytes"), std::string::npos) << strict.err;

  for (int np : {1, 2}) {
    SCOPED_TRACE(np);
    const std::string run_dir = dir.file("limited-" + std::to_string(np));
    std::vector<std::string> sets = data;
    sets.push_back("corpus.max_token_bytes=100");
    RunResult r = train_glove(np, run_dir, sets);
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find("1 tokens longer than corpus.max_token_bytes = 100 bytes truncated"), std::string::npos)
        << r.err;
    const std::string vocab = read_file(run_dir + "/vocab.txt");
    EXPECT_NE(vocab.find(std::string(100, 'z') + " 1\n"), std::string::npos) << "the truncated token, once";
    const std::string z10(10, 'z');
    size_t z_words = vocab.rfind(z10, 0) == 0 ? 1 : 0;
    for (size_t p = vocab.find("\n" + z10); p != std::string::npos; p = vocab.find("\n" + z10, p + 1)) ++z_words;
    EXPECT_EQ(z_words, 1u) << "pieces of the token reached vocab.txt";
  }
}

// ---- an empty corpus and a one-word corpus ---------------------------------------------

// An empty corpus's error did not name the file; a one-word corpus "trained" 0 updates and
// exported untrained vectors with exit 0. Both are now errors naming the corpus file.
TEST(TinyCorpus, EmptyAndOneWordAreRefusedNamingTheFile) {
  TempDir dir;
  const std::string empty = dir.file("empty.txt"), one = dir.file("one.txt");
  write_file(empty, "\n\n");
  std::string same;
  for (int i = 0; i < 1000; ++i) same += "word word word\n";
  write_file(one, same);
  for (const std::string& corpus : {empty, one}) {
    for (const char* model : {"glove", "word2vec"}) {
      SCOPED_TRACE(corpus + " " + model);
      const std::string run_dir = dir.file(std::string("run-") + model + "-" + fs::path(corpus).stem().string());
      RunResult r = train_glove(1, run_dir, {"corpus.synthetic=false", corpus_paths(corpus),
                                             std::string("train.model=") + model});
      EXPECT_EQ(r.status, 1) << r.err;
      EXPECT_NE(r.err.find(corpus), std::string::npos) << r.err;
      EXPECT_EQ(r.err.find("vectors.txt"), std::string::npos) << r.err;
      // No vectors in any format (vectors.formats): untrained vectors are not exported.
      for (const char* file : {"vectors.txt", "vectors.w2v.txt", "vectors.bin"}) {
        EXPECT_FALSE(fs::exists(run_dir + "/" + file)) << run_dir << "/" << file << " was written";
      }
    }
  }
}

// A 0-byte corpus file failed, for GPT and BERT, with what the empty stages lacked ("token
// shard for an empty vocabulary", "holds out no token") and no corpus file named; a
// directory with no file in it read "names empty directories" without saying which. Both
// are now errors naming the path, for every model; a corpus of blank lines too for BERT.
TEST(TinyCorpus, EmptyFilesAndDirectoriesAreNamedForEveryModel) {
  TempDir dir;
  const std::string zero = dir.file("zero.txt"), blank = dir.file("blank.txt"), nothing = dir.file("nothing");
  write_file(zero, "");
  write_file(blank, "\n\n  \n");
  fs::create_directories(nothing + "/sub");   // a subdirectory, but no file
  struct Case {
    std::string model, path, says;
  };
  std::vector<Case> cases;
  for (const char* model : {"glove", "word2vec", "gpt", "bert"}) {
    cases.push_back({model, zero, "the corpus is empty"});
    cases.push_back({model, nothing, "no file in them"});
  }
  cases.push_back({"bert", blank, "holds no token"});
  for (const Case& c : cases) {
    SCOPED_TRACE(c.model + " " + c.path);
    const std::string run_dir = dir.file("run-" + c.model + "-" + fs::path(c.path).stem().string());
    RunResult r = run(loom_cmd(1, {"train", std::string(LOOM_SOURCE_DIR) + "/examples/" + c.model + ".toml",
                                   "--set", "run.dir=" + run_dir, "--set", "corpus.synthetic=false",
                                   "--set", corpus_paths(c.path)}),
                      120s);
    ASSERT_FALSE(r.timed_out);
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_NE(r.err.find(c.path), std::string::npos) << r.err;
    EXPECT_NE(r.err.find(c.says), std::string::npos) << r.err;
    // The default checkpoint.dir, "checkpoints" in the run directory: no checkpoint at all.
    EXPECT_FALSE(fs::exists(run_dir + "/checkpoints/latest")) << r.err;
    EXPECT_TRUE(checkpoint_steps(run_dir + "/checkpoints").empty()) << r.err;
  }
}

}  // namespace
}  // namespace loom::test
