// Every failure mode of a checkpoint directory, and a stopped rank, on the real `loom train`
// of every model (GloVe, word2vec, GPT, BERT) at 1 and 2 ranks (issue 20).
//
// Damage: an uninterrupted reference run keeps a checkpoint after every step (every 4th for
// word2vec). A run directory is then made as a run killed after its third checkpoint leaves
// it: the reference's first three checkpoints, `latest` naming the third. The newest two are
// damaged, each by another kind (a flipped byte inside a named dataset, found with HDF5 as
// tests/io/test_checkpoint_files.cpp does; the file cut in half; a dataset deleted; a
// parameter and its optimizer slots rewritten in another shape, the file whole by its own
// checks (checksums and listing agree), only the model's shapes tell; a wrong root attribute
// `format` or `format_version`; an empty file; `latest` naming a file that is gone), so
// that every kind is tried both where `latest` points and where the fallback by step looks. `--resume auto` must warn for each file naming it and the damage (and the
// dataset), resume from the first checkpoint, and end bit for bit equal to the reference
// (every /model and /optimizer dataset; the exported vectors of GloVe and word2vec). With all
// three checkpoints damaged it must refuse (exit 1, once, nothing written: Note [All
// checkpoints damaged] in io/checkpoint_files.cpp); moved away, the run starts fresh when
// asked with --resume auto, says so, and again ends equal to the reference.
//
// A stopped rank: SIGSTOP to one rank of a 2-rank `loom train` with comm.timeout_s = 3 ends
// the job with exit status 3 within the deadline plus a few seconds, the message names the
// operation, the step and the stopped rank (GPT and word2vec stop rank 1, GloVe and BERT
// rank 0, which hosts the table of arrivals).
//
// After every run no process of it is left (Note [No process left behind]).
#include <gtest/gtest.h>
#include <hdf5.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "io/h5.h"
#include "tests/support/bert_e2e.h"
#include "tests/support/checkpoint_state.h"
#include "tests/fault/fault_models.h"
#include "tests/support/test_support.h"

namespace loom::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// ---- damage -----------------------------------------------------------------------------

enum class Damage {
  kFlippedByte, kTruncated, kMissingDataset, kWrongShape, kWrongFormat, kWrongFormatVersion, kEmptyFile, kLatestNowhere
};

const char* name_of(Damage d) {
  switch (d) {
    case Damage::kFlippedByte: return "flipped byte";
    case Damage::kTruncated: return "truncated";
    case Damage::kMissingDataset: return "missing dataset";
    case Damage::kWrongShape: return "wrong shape";
    case Damage::kWrongFormat: return "wrong format";
    case Damage::kWrongFormatVersion: return "wrong format_version";
    case Damage::kEmptyFile: return "empty file";
    case Damage::kLatestNowhere: return "latest naming a file that is gone";
  }
  return "?";
}

// Flips one byte inside the data of `dataset` ("/model/W"), found with H5Dget_offset.
void flip_byte_in(const std::string& path, const std::string& dataset) {
  uint64_t offset = 0;
  {
    const size_t slash = dataset.rfind('/');
    h5::File f = h5::File::open(path, false);
    const auto off = f.open_group(dataset.substr(1, slash - 1)).open_dataset(dataset.substr(slash + 1)).file_offset();
    ASSERT_TRUE(off.has_value()) << dataset << " in " << path;
    offset = *off + 3;
  }
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x5a);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
  ASSERT_TRUE(f.good()) << path;
}

// Deletes `dataset` as h5py's `del` would (the root attribute listing it stays).
void delete_dataset(const std::string& path, const std::string& dataset) {
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0) << path;
  EXPECT_GE(H5Ldelete(f, dataset.c_str(), H5P_DEFAULT), 0) << dataset;
  ASSERT_GE(H5Fclose(f), 0) << path;
}

// A shape as the reader's messages write it: "(64, 16)", "(64,)".
std::string shape_words(const std::vector<int64_t>& dims) {
  std::string s = "(";
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? ", " : "") + std::to_string(dims[i]);
  return s + (dims.size() == 1 ? ",)" : ")");
}

// A shape as the root attribute `datasets` lists it: "64x16".
std::string listed_shape(const std::vector<int64_t>& dims) {
  std::string s;
  for (size_t i = 0; i < dims.size(); ++i) s += (i ? "x" : "") + std::to_string(dims[i]);
  return s;
}

// Rewrites /model/PARAM and its /optimizer/PARAM/* slots with the same data in another
// shape, as h5py's `del f[p]; f[p] = data.reshape(...)` with the crc32 attribute copied
// would: (r, c) becomes (r * c,), (n,) becomes (1, n). The elements and their order, hence
// the crc32, are unchanged, and the root attribute `datasets` is rewritten to list the new
// shapes, so the file is whole by every check of its own: only the model's shapes tell.
// Returns the words the warning must hold: the /model dataset, its shape in the file and
// the shape the model expects.
std::vector<std::string> reshape_parameter(const std::string& path, const std::string& param) {
  std::vector<std::string> paths = {"/model/" + param};
  {
    h5::File f = h5::File::open(path, false);
    if (f.has("optimizer") && f.open_group("optimizer").has(param))
      for (const auto& c : f.open_group("optimizer").open_group(param).children())
        paths.push_back("/optimizer/" + param + "/" + c.name);
  }
  std::string listing;
  std::vector<std::string> words;
  {
    h5::File f = h5::File::open(path, false);
    EXPECT_FALSE(f.has_attr("datasets.1")) << path << ": a listing in pieces, which this test does not rewrite";
    listing = f.attr_string("datasets");
  }
  for (const std::string& p : paths) {
    const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    EXPECT_GE(f, 0) << path;
    const hid_t d = H5Dopen2(f, p.c_str(), H5P_DEFAULT);
    EXPECT_GE(d, 0) << p;
    const hid_t space = H5Dget_space(d);
    std::vector<hsize_t> hdims(static_cast<size_t>(H5Sget_simple_extent_ndims(space)));
    H5Sget_simple_extent_dims(space, hdims.data(), nullptr);
    H5Sclose(space);
    std::vector<int64_t> dims(hdims.begin(), hdims.end());
    int64_t numel = 1;
    for (int64_t n : dims) numel *= n;
    std::vector<float> data(static_cast<size_t>(numel));
    EXPECT_GE(H5Dread(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()), 0) << p;
    uint32_t crc = 0;
    const hid_t a = H5Aopen(d, "crc32", H5P_DEFAULT);
    EXPECT_GE(H5Aread(a, H5T_NATIVE_UINT32, &crc), 0) << p;
    H5Aclose(a);
    H5Dclose(d);
    EXPECT_GE(H5Ldelete(f, p.c_str(), H5P_DEFAULT), 0) << p;
    EXPECT_GE(H5Fclose(f), 0) << path;
    const std::vector<int64_t> now = dims.size() == 1 ? std::vector<int64_t>{1, numel} : std::vector<int64_t>{numel};
    {
      const size_t slash = p.rfind('/');
      h5::File w = h5::File::open(path, true);
      h5::Group g = p.rfind("/model/", 0) == 0 ? w.open_group("model") : w.open_group("optimizer").open_group(param);
      h5::Dataset ds = g.create_dataset(p.substr(slash + 1), h5::ElemType::kF32, now);
      ds.write_rows(0, now[0], data.data());
      ds.set_attr_u32("crc32", crc);
    }
    const std::string was = p + " " + listed_shape(dims) + "\n";
    const size_t at = listing.find(was);
    EXPECT_NE(at, std::string::npos) << path << " does not list " << was << listing;
    if (at != std::string::npos) listing.replace(at, was.size(), p + " " + listed_shape(now) + "\n");
    if (words.empty()) words = {p + ": file has " + shape_words(now), "this run's model expects " + shape_words(dims)};
  }
  h5::File::open(path, true).set_attr("datasets", listing);
  return words;
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

// What the warning about checkpoint `path`, damaged by `d`, says on one line.
std::vector<std::string> warning_words(Damage d, const std::string& path, const ModelCase& m) {
  const std::string file = fs::path(path).filename().string();
  switch (d) {
    case Damage::kFlippedByte: return {"skipping damaged checkpoint", path, m.flipped + ":", "checksum mismatch"};
    case Damage::kTruncated: return {"skipping damaged checkpoint", path, "the file is truncated"};
    case Damage::kMissingDataset: return {"skipping damaged checkpoint", path, m.deleted + ":", "missing"};
    case Damage::kWrongShape: return {"skipping damaged checkpoint", path};   // and the shapes (damage)
    case Damage::kWrongFormat:
      return {"skipping damaged checkpoint", path, "not a loom checkpoint", "root attribute format is \"not-loom\""};
    case Damage::kWrongFormatVersion: return {"skipping damaged checkpoint", path, "unsupported format_version 99"};
    case Damage::kEmptyFile: return {"skipping damaged checkpoint", path, "not an HDF5 file"};
    case Damage::kLatestNowhere: return {"latest names " + file + ", which does not exist"};
  }
  return {};
}

// Damages the checkpoint at `path`; returns the words the warning about it must hold on
// one line: warning_words, and what only the damage knows (the shapes it changed).
std::vector<std::string> damage(Damage d, const std::string& path, const ModelCase& m) {
  std::vector<std::string> words = warning_words(d, path, m);
  switch (d) {
    case Damage::kFlippedByte: flip_byte_in(path, m.flipped); break;
    case Damage::kTruncated: fs::resize_file(path, fs::file_size(path) / 2); break;
    case Damage::kMissingDataset: delete_dataset(path, m.deleted); break;
    case Damage::kWrongShape: {
      const std::vector<std::string> shapes = reshape_parameter(path, m.reshaped);
      words.insert(words.end(), shapes.begin(), shapes.end());
      break;
    }
    case Damage::kWrongFormat: h5::File::open(path, true).set_attr("format", std::string("not-loom")); break;
    case Damage::kWrongFormatVersion: h5::File::open(path, true).set_attr("format_version", int64_t{99}); break;
    case Damage::kEmptyFile: fs::resize_file(path, 0); break;
    case Damage::kLatestNowhere: fs::remove(path); break;
  }
  return words;
}

// ---- the matrix -------------------------------------------------------------------------

// An uninterrupted run of one model at one world size, shared by the tests of that pair.
struct Reference {
  std::string run_dir;
  std::vector<int64_t> steps;                 // of its checkpoints
  std::vector<std::vector<float>> state;      // its final /model and /optimizer data
  std::string vectors;                        // vectors.txt, where the model exports one
  std::string failure;                        // why there is none
};

class DamageMatrix : public ::testing::TestWithParam<std::tuple<std::string, int>> {
 protected:
  void SetUp() override {
    if (bert_vocab().empty()) GTEST_FAIL() << "the suite could not learn a WordPiece vocabulary";
    model_ = model_case(std::get<0>(GetParam()));
    np_ = std::get<1>(GetParam());
    static std::map<std::string, Reference> made;
    const std::string key = model_.name + std::to_string(np_);
    if (!made.count(key)) made[key] = reference_run();
    ref_ = &made[key];
    ASSERT_EQ(ref_->failure, "");
  }

  Reference reference_run() const {
    Reference ref;
    ref.run_dir = shared_dir() + "/ref_" + model_.name + std::to_string(np_);
    RunResult r = run(train_cmd(model_, np_, ref.run_dir), 300s);
    expect_nothing_left(ref.run_dir, "the reference run");
    ref.steps = checkpoint_steps(ref.run_dir + "/checkpoints");
    if (r.status != 0) {
      ref.failure = "the reference run exited " + std::to_string(r.status) + ":\n" + r.err;
    } else if (ref.steps.size() < 4) {
      ref.failure = "the reference run needs three checkpoints before its last:\n" + r.err;
    } else if (final_step(ref.run_dir) != ref.steps.back()) {
      ref.failure = "`latest` does not name the reference run's last checkpoint";
    } else {
      ref.state = checkpoint_state(final_checkpoint(ref.run_dir));
      if (model_.vectors) ref.vectors = read_file(ref.run_dir + "/vectors.txt");
    }
    return ref;
  }

  std::string ref_checkpoint(size_t i) const {
    return ref_->run_dir + "/checkpoints/" + checkpoint_name(ref_->steps[i]);
  }

  // A run directory as a run killed after its third checkpoint leaves it.
  std::string interrupted(const std::string& name) const {
    const std::string run_dir = dir_.file(name), ckpt = run_dir + "/checkpoints";
    fs::create_directories(ckpt);
    for (size_t i = 0; i < 3; ++i) fs::copy_file(ref_checkpoint(i), ckpt + "/" + checkpoint_name(ref_->steps[i]));
    write_file(ckpt + "/latest", checkpoint_name(ref_->steps[2]) + "\n");
    return run_dir;
  }

  // The run in `run_dir` ended equal to the reference, bit for bit.
  void expect_reference_result(const std::string& run_dir, const std::string& what) const {
    EXPECT_EQ(final_step(run_dir), ref_->steps.back()) << what;
    expect_equal_state(checkpoint_state(final_checkpoint(run_dir)), ref_->state, what);
    if (model_.vectors) {
      EXPECT_EQ(read_file(run_dir + "/vectors.txt"), ref_->vectors) << what << ": vectors.txt differs";
    }
  }

  // The newest checkpoint damaged by `newest`, the one before by `second`: --resume auto
  // warns for both and resumes from the first.
  void expect_fallback(Damage newest, Damage second, const std::string& name) {
    const std::string what = model_.name + " np " + std::to_string(np_) + ": newest " + name_of(newest) +
                             ", the one before " + name_of(second);
    SCOPED_TRACE(what);
    const std::string run_dir = interrupted(name), ckpt = run_dir + "/checkpoints";
    const std::string good = ckpt + "/" + checkpoint_name(ref_->steps[0]);
    const std::string path2 = ckpt + "/" + checkpoint_name(ref_->steps[1]), path3 = ckpt + "/" + checkpoint_name(ref_->steps[2]);
    const std::vector<std::string> words3 = damage(newest, path3, model_), words2 = damage(second, path2, model_);
    const auto t0 = Clock::now();
    RunResult r = run(train_cmd(model_, np_, run_dir, {"--resume", "auto"}), 300s);
    std::printf("%s: %.1f s\n", what.c_str(), std::chrono::duration<double>(Clock::now() - t0).count());
    expect_nothing_left(run_dir, what);
    ASSERT_FALSE(r.timed_out) << r.err;
    ASSERT_EQ(r.status, 0) << r.err;
    for (const auto& [d, path, words] : {std::tuple{newest, path3, words3}, std::tuple{second, path2, words2}}) {
      EXPECT_NE(line_with_all(r.err, words), "")
          << "no warning says that " << path << " is damaged (" << name_of(d) << ") in these words:\n  "
          << ::testing::PrintToString(words) << "\n" << r.err;
    }
    EXPECT_EQ(line_with_all(r.err, {"skipping damaged checkpoint", good}), "") << good << " is good:\n" << r.err;
    EXPECT_NE(r.err.find("resumed from " + good + " after step " + std::to_string(ref_->steps[0]) + " "),
              std::string::npos) << r.err;
    expect_reference_result(run_dir, what);
  }

  TempDir dir_;
  ModelCase model_;
  int np_ = 1;
  const Reference* ref_ = nullptr;
};

TEST_P(DamageMatrix, ResumeAutoFallsBackPastEveryKindOfDamageAndMatches) {
  // Each kind once at the newest checkpoint (where `latest` points) and once at the one
  // before (where the fallback by step looks), over the two world sizes.
  using D = Damage;
  if (np_ == 1) {
    expect_fallback(D::kFlippedByte, D::kTruncated, "a");
    expect_fallback(D::kMissingDataset, D::kWrongFormat, "b");
    expect_fallback(D::kWrongFormatVersion, D::kEmptyFile, "c");
    expect_fallback(D::kLatestNowhere, D::kWrongShape, "d");
  } else {
    expect_fallback(D::kTruncated, D::kFlippedByte, "a");
    expect_fallback(D::kWrongFormat, D::kMissingDataset, "b");
    expect_fallback(D::kEmptyFile, D::kWrongFormatVersion, "c");
    expect_fallback(D::kLatestNowhere, D::kMissingDataset, "d");
    expect_fallback(D::kWrongShape, D::kFlippedByte, "e");
  }
}

// All three checkpoints damaged: --resume auto refuses, says so once, and leaves the
// directory as it was; moved away, --resume auto starts fresh and says so.
TEST_P(DamageMatrix, AllDamagedIsRefusedThenStartsFreshWhenMovedAway) {
  const std::string run_dir = interrupted("all"), ckpt = run_dir + "/checkpoints";
  using D = Damage;
  const std::vector<D> kinds = np_ == 1 ? std::vector<D>{D::kTruncated, D::kWrongFormatVersion, D::kMissingDataset}
                                        : std::vector<D>{D::kEmptyFile, D::kWrongFormat, D::kFlippedByte};
  std::map<std::string, std::string> before;
  std::vector<std::vector<std::string>> words;
  for (size_t i = 0; i < 3; ++i) {
    const std::string path = ckpt + "/" + checkpoint_name(ref_->steps[2 - i]);
    words.push_back(damage(kinds[i], path, model_));
    before[path] = read_file(path);
  }
  before[ckpt + "/latest"] = read_file(ckpt + "/latest");

  RunResult r = run(train_cmd(model_, np_, run_dir, {"--resume", "auto"}), 300s);
  expect_nothing_left(run_dir, "the refused run");
  ASSERT_FALSE(r.timed_out) << r.err;
  EXPECT_EQ(r.status, 1) << r.err;
  for (size_t i = 0; i < 3; ++i) {
    const std::string path = ckpt + "/" + checkpoint_name(ref_->steps[2 - i]);
    EXPECT_NE(line_with_all(r.err, words[i]), "")
        << "no warning says that " << path << " is damaged (" << name_of(kinds[i]) << "):\n" << r.err;
  }
  const std::string refusal = "--resume auto: " + ckpt + " holds 3 checkpoint file(s), none of them usable";
  EXPECT_NE(line_with_all(r.err, {refusal, "training was not started", "--resume PATH", "move " + ckpt + " away"}), "")
      << r.err;
  size_t said = 0;
  for (size_t at = r.err.find(refusal); at != std::string::npos; at = r.err.find(refusal, at + 1)) ++said;
  EXPECT_EQ(said, 1u) << "the refusal is printed once:\n" << r.err;
  EXPECT_EQ(r.err.find("MPI_ABORT"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("; starting fresh"), std::string::npos) << r.err;
  // Nothing was written: the damaged files, `latest` and nothing else.
  std::map<std::string, std::string> after;
  for (const auto& e : fs::directory_iterator(ckpt)) after[e.path().string()] = read_file(e.path().string());
  EXPECT_TRUE(after == before) << "the checkpoint directory changed";
  EXPECT_FALSE(fs::exists(run_dir + "/metrics.jsonl")) << "the refused run trained";

  // Told: the damaged checkpoints are moved away, and --resume auto starts from step 0.
  fs::rename(ckpt, run_dir + "/damaged");
  RunResult fresh = run(train_cmd(model_, np_, run_dir, {"--resume", "auto"}), 300s);
  expect_nothing_left(run_dir, "the fresh run");
  ASSERT_FALSE(fresh.timed_out) << fresh.err;
  ASSERT_EQ(fresh.status, 0) << fresh.err;
  EXPECT_NE(fresh.err.find("--resume auto: no checkpoint in " + ckpt + "; starting fresh"), std::string::npos)
      << fresh.err;
  EXPECT_EQ(fresh.err.find("resumed from"), std::string::npos) << fresh.err;
  expect_reference_result(run_dir, "started fresh");
}

std::string matrix_name(const ::testing::TestParamInfo<std::tuple<std::string, int>>& info) {
  return std::get<0>(info.param) + "_np" + std::to_string(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Models, DamageMatrix,
                         ::testing::Combine(::testing::Values("glove", "word2vec", "gpt", "bert"),
                                            ::testing::Values(1, 2)),
                         matrix_name);

// ---- a stopped rank ---------------------------------------------------------------------

// The rank of an Open MPI process, from its environment; -1 when unknown.
int mpi_rank_of(pid_t pid) {
  const std::string env = read_file("/proc/" + std::to_string(pid) + "/environ");
  const std::string key = std::string("OMPI_COMM_WORLD_RANK=");
  for (size_t at = 0; at < env.size(); at = env.find('\0', at) + 1) {
    if (env.compare(at, key.size(), key) == 0) return std::atoi(env.c_str() + at + key.size());
    if (env.find('\0', at) == std::string::npos) break;
  }
  return -1;
}

size_t lines_in(const std::string& path) {
  const std::string text = read_file(path);
  return static_cast<size_t>(std::count(text.begin(), text.end(), '\n'));
}

class StoppedRank : public ::testing::TestWithParam<std::tuple<std::string, int>> {};

// SIGSTOP to rank `victim` of a 2-rank run in its step loop: the watchdog of the other rank
// ends the job with exit status 3 within comm.timeout_s plus a few seconds, naming the
// operation, the step and the stopped rank, and nothing of the job is left.
TEST_P(StoppedRank, WatchdogEndsTheJobNamingTheOperationStepAndRank) {
  const auto [name, victim] = GetParam();
  constexpr int kTimeoutS = 3;
  const ModelCase m = model_case(name);
  TempDir dir;
  const std::string run_dir = dir.file("run");
  // Long enough never to end by itself; no checkpoint on the way.
  const std::vector<std::string> sets = {
      "--set", "comm.timeout_s=" + std::to_string(kTimeoutS), "--set", "checkpoint.every_steps=0",
      "--set", name == "gpt" || name == "bert" ? name + ".steps=1000000" : name + ".epochs=100000", "--set",
      "progress.metrics_every=1"};
  Process p(train_cmd(m, 2, run_dir, sets));
  const std::vector<pid_t> ranks = wait_for_ranks(p, "loom", 2, 120s);
  ASSERT_EQ(ranks.size(), 2u) << p.err();
  pid_t stopped = -1;
  for (pid_t r : ranks)
    if (mpi_rank_of(r) == victim) stopped = r;
  ASSERT_GT(stopped, 0) << "no rank " << victim << " among the job's processes";
  // Training is under way, both ranks in the step loop's collectives, once rank 0 has
  // reported a few steps.
  ASSERT_TRUE(wait_until([&] { return lines_in(run_dir + "/metrics.jsonl") >= 3; }, 120s, &p))
      << "no steps were reported:\n" << p.err();
  const auto t0 = Clock::now();
  ASSERT_EQ(kill(stopped, SIGSTOP), 0);
  const bool ended = p.wait_for(std::chrono::seconds(kTimeoutS + 60));
  const double took = std::chrono::duration<double>(Clock::now() - t0).count();
  if (!ended) {   // leave nothing behind: the stopped rank and the job we started
    kill(stopped, SIGCONT);
    p.signal_group(SIGKILL);
    p.wait_for(10s);
  }
  ASSERT_TRUE(ended) << "the job did not end within " << kTimeoutS + 60 << " s of the stop:\n"
                     << describe_descendants(p.pid()) << p.err();
  std::printf("%s np 2, rank %d stopped: exit %d after %.1f s\n", name.c_str(), victim, p.exit_status(), took);
  const std::string err = p.err();
  EXPECT_EQ(p.exit_status(), 3) << err;
  EXPECT_LT(took, kTimeoutS + 10.0) << err;
  // The rank that waited reports: "[watchdog] error: watchdog: allreduce_async #N (...) at
  // step S on rank R/2 did not finish within 3000 ms; rank V (last entered #N) entered it
  // but is unresponsive ...". The stopped rank, continued by mpirun as it ends the job, may
  // report too, and then blames itself ("this rank itself was not running").
  const std::regex report("watchdog: (allreduce|allreduce_async|broadcast|allgather|allgatherv|alltoallv|barrier) "
                          "#\\d+[^\\n]* at step (\\d+) on rank (\\d)/2 did not finish within " +
                          std::to_string(kTimeoutS * 1000) + " ms[^\\n]*");
  std::string healthy_report;
  for (std::sregex_iterator it(err.begin(), err.end(), report), end; it != end; ++it) {
    const std::string line = (*it)[0];
    if (std::stoi((*it)[3]) != victim) {
      healthy_report = line;
      EXPECT_GE(std::stoll((*it)[2]), 2) << line;
    } else {
      EXPECT_NE(line.find("because this rank itself was not running"), std::string::npos)
          << "the stopped rank blames another: " << line;
    }
  }
  ASSERT_NE(healthy_report, "") << "no report from the rank that waited:\n" << err;
  std::printf("  %s\n", healthy_report.c_str());
  EXPECT_NE(healthy_report.find("rank " + std::to_string(victim) + " (last entered #"), std::string::npos)
      << healthy_report;
  EXPECT_NE(healthy_report.find("unresponsive"), std::string::npos) << healthy_report;
  EXPECT_EQ(healthy_report.find("rank " + std::to_string(1 - victim) + " (last entered"), std::string::npos)
      << "the healthy rank is blamed: " << healthy_report;
  // No process of the job is left, the stopped one included: by the pids started (a rank
  // that is ending has an empty command line) and by the run directory.
  for (pid_t pid : ranks) {
    const auto alive = [pid] { return kill(pid, 0) == 0 && state_of(std::to_string(pid)) != 'Z'; };
    EXPECT_TRUE(wait_until([&] { return !alive(); }, 10s))
        << "rank pid " << pid << (pid == stopped ? " (the stopped one)" : "") << " is still there, state "
        << state_of(std::to_string(pid));
    if (alive()) {   // ours: continue it so that the kill is taken at once
      kill(pid, SIGCONT);
      kill(pid, SIGKILL);
    }
  }
  expect_nothing_left(run_dir, "the stopped job");
}

std::string stopped_name(const ::testing::TestParamInfo<std::tuple<std::string, int>>& info) {
  return std::get<0>(info.param) + "_rank" + std::to_string(std::get<1>(info.param));
}

INSTANTIATE_TEST_SUITE_P(Np2, StoppedRank,
                         ::testing::Values(std::tuple{std::string("gpt"), 1}, std::tuple{std::string("word2vec"), 1},
                                           std::tuple{std::string("glove"), 0}, std::tuple{std::string("bert"), 0}),
                         stopped_name);

}  // namespace
}  // namespace loom::test
