// Checkpoint damage, resume fallback and retention, on real files (singleton world).
#include <gtest/gtest.h>
#include <fcntl.h>
#include <hdf5.h>
#include <unistd.h>

#include "dist/mpi_communicator.h"
#include "io/checkpoint.h"
#include "io/h5.h"
#include "tests/io/checkpoint_fixture.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

std::string save(const test::TempDir& dir, const std::string& name, int64_t step = 7) {
  test::CheckpointFixture fx(0, step);
  return save_checkpoint(MpiCommunicator::world(), dir.path(), name, fx.req, WriteMode::kGathered);
}

// Flips one byte inside the data of `dataset` (found with H5Dget_offset).
void flip_byte(const std::string& path, const std::string& group, const std::string& dataset) {
  uint64_t offset = 0;
  {
    h5::File f = h5::File::open(path, false);
    auto off = f.open_group(group).open_dataset(dataset).file_offset();
    ASSERT_TRUE(off.has_value());
    offset = *off + 5;
  }
  int fd = ::open(path.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  unsigned char b = 0;
  ASSERT_EQ(::pread(fd, &b, 1, static_cast<off_t>(offset)), 1);
  b ^= 0x10;
  ASSERT_EQ(::pwrite(fd, &b, 1, static_cast<off_t>(offset)), 1);
  ::close(fd);
}

// Rewrites `dataset` ("/optimizer/W/m", 2-D) as 1-D with the same elements, as h5py's `del`
// and a new dataset would: its crc32 (of the same elements) is copied and the root attribute
// `datasets` lists the new shape, so only the shapes themselves can tell.
void rewrite_flat(const std::string& path, const std::string& dataset) {
  std::vector<float> data;
  uint32_t crc = 0;
  std::string was;
  {
    h5::File f = h5::File::open(path, false);
    const size_t slash = dataset.rfind('/');
    h5::Group g = f.open_group("optimizer").open_group(dataset.substr(11, slash - 11));
    h5::Dataset ds = g.open_dataset(dataset.substr(slash + 1));
    ASSERT_EQ(ds.dims().size(), 2u) << dataset;
    was = dataset + " " + checkpoint_shape_text(ds.dims()) + "\n";
    data.resize(static_cast<size_t>(ds.numel()));
    ds.read_elements(0, ds.numel(), data.data());
    crc = ds.attr_u32("crc32");
  }
  const hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(f, 0) << path;
  ASSERT_GE(H5Ldelete(f, dataset.c_str(), H5P_DEFAULT), 0) << dataset;
  const hsize_t n = data.size();
  const hid_t space = H5Screate_simple(1, &n, nullptr);
  const hid_t d = H5Dcreate2(f, dataset.c_str(), H5T_IEEE_F32LE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  ASSERT_GE(d, 0) << dataset;
  EXPECT_GE(H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()), 0);
  const hid_t scalar = H5Screate(H5S_SCALAR);
  const hid_t a = H5Acreate2(d, "crc32", H5T_STD_U32LE, scalar, H5P_DEFAULT, H5P_DEFAULT);
  EXPECT_GE(H5Awrite(a, H5T_NATIVE_UINT32, &crc), 0);
  H5Aclose(a);
  H5Sclose(scalar);
  H5Dclose(d);
  H5Sclose(space);
  ASSERT_GE(H5Fclose(f), 0);
  h5::File w = h5::File::open(path, true);
  std::string listing = w.attr_string("datasets");
  const size_t at = listing.find(was);
  ASSERT_NE(at, std::string::npos) << listing;
  w.set_attr("datasets", listing.replace(at, was.size(), dataset + " " + std::to_string(n) + "\n"));
}

std::string open_error(const std::string& path) {
  try {
    CheckpointReader r;
    r.open(path);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(CheckpointDamage, FlippedByteIsRefusedNamingTheDataset) {
  test::TempDir dir;
  std::string path = save(dir, "a");
  flip_byte(path, "model", "h.0.attn.c_attn.weight");
  std::string msg = open_error(path);
  EXPECT_TRUE(has(msg, path)) << msg;
  EXPECT_TRUE(has(msg, "/model/h.0.attn.c_attn.weight")) << msg;
  EXPECT_TRUE(has(msg, "checksum mismatch")) << msg;
  bool ok = true;
  std::string report = inspect_checkpoint(path, &ok);
  EXPECT_FALSE(ok);
  EXPECT_TRUE(has(report, "/model/h.0.attn.c_attn.weight  float32 (12, 4)  192 B")) << report;
  EXPECT_TRUE(has(report, "DAMAGED")) << report;
}

TEST(CheckpointDamage, FlippedByteInOptimizerAndStateIsRefused) {
  test::TempDir dir;
  std::string a = save(dir, "a"), b = save(dir, "b");
  flip_byte(a, "optimizer/W", "v");
  flip_byte(b, "state", "rng");
  EXPECT_TRUE(has(open_error(a), "/optimizer/W/v")) << open_error(a);
  EXPECT_TRUE(has(open_error(b), "/state/rng")) << open_error(b);
}

TEST(CheckpointDamage, TruncatedFileIsRefusedNamingTheFile) {
  test::TempDir dir;
  std::string path = save(dir, "a");
  off_t size = static_cast<off_t>(test::read_file(path).size());
  ASSERT_EQ(::truncate(path.c_str(), size / 2), 0);
  std::string msg = open_error(path);
  EXPECT_TRUE(has(msg, path)) << msg;
  bool ok = true;
  inspect_checkpoint(path, &ok);
  EXPECT_FALSE(ok);
}

TEST(CheckpointDamage, WrongFormatVersionIsRefused) {
  test::TempDir dir;
  std::string path = save(dir, "a");
  {
    h5::File f = h5::File::open(path, true);
    f.set_attr("format_version", int64_t{2});
  }
  std::string msg = open_error(path);
  EXPECT_TRUE(has(msg, "unsupported format_version 2")) << msg;
  EXPECT_TRUE(has(msg, path)) << msg;
}

// Removes attribute `attr` of dataset `dataset` with HDF5 itself (loom's wrapper has no
// way to delete one, as loom never does).
void delete_attr(const std::string& path, const std::string& dataset, const std::string& attr) {
  const hid_t file = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0) << path;
  const hid_t ds = H5Dopen2(file, dataset.c_str(), H5P_DEFAULT);
  ASSERT_GE(ds, 0) << dataset;
  EXPECT_GE(H5Adelete(ds, attr.c_str()), 0) << dataset << " " << attr;
  H5Dclose(ds);
  H5Fclose(file);
}

TEST(CheckpointDamage, MissingChecksumAttributeIsRefused) {
  test::TempDir dir;
  std::string path = save(dir, "a");
  ASSERT_EQ(open_error(path), "");
  delete_attr(path, "/model/b", "crc32");
  std::string msg = open_error(path);
  EXPECT_TRUE(has(msg, path)) << msg;
  EXPECT_TRUE(has(msg, "/model/b")) << msg;
  EXPECT_TRUE(has(msg, "crc32 is missing")) << msg;
  bool ok = true;
  EXPECT_TRUE(has(inspect_checkpoint(path, &ok), "DAMAGED: checksum attribute crc32 is missing"));
  EXPECT_FALSE(ok);
}

TEST(CheckpointDamage, ChecksumAttributeOfAnotherTypeIsRefused) {
  test::TempDir dir;
  std::string path = save(dir, "a");
  {
    h5::File f = h5::File::open(path, true);
    f.open_group("model").open_dataset("b").set_attr("crc32", std::string("gone"));
  }
  std::string msg = open_error(path);
  EXPECT_TRUE(has(msg, "/model/b")) << msg;
  EXPECT_TRUE(has(msg, "crc32")) << msg;
}

TEST(CheckpointDamage, MissingDatasetAndShapeMismatchAreListed) {
  test::TempDir dir;
  std::string path = save(dir, "a");
  CheckpointReader r;
  r.open(path);
  test::CheckpointFixture other(0, 7, /*w_rows=*/6, /*with_extra=*/true);
  std::string msg;
  try {
    r.read_model_into(other.params);
  } catch (const DataError& e) {
    msg = e.what();
  }
  EXPECT_TRUE(has(msg, path)) << msg;
  EXPECT_TRUE(has(msg, "/model/W: file has (5, 3), model expects (6, 3)")) << msg;
  EXPECT_TRUE(has(msg, "/model/extra: missing")) << msg;
  EXPECT_FALSE(has(msg, "/model/b")) << msg;   // only the differing ones
  std::vector<float> wrong(3);
  EXPECT_THROW(r.read_slot("W", "m", Tensor::of(wrong.data(), 3)), DataError);
  EXPECT_THROW(r.read_state("nonexistent"), DataError);
}

// Note [A slot has its parameter's shape]: a slot rewritten in another shape, its checksum
// and the listing with it, is found by the file's own checks: open() refuses the file and
// inspect names the slot, its shape and its parameter's.
TEST(CheckpointDamage, ASlotOfAnotherShapeThanItsParameterIsReported) {
  test::TempDir dir;
  const std::string path = save(dir, "a");
  rewrite_flat(path, "/optimizer/W/m");
  const std::string msg = open_error(path);
  EXPECT_TRUE(has(msg, path)) << msg;
  EXPECT_TRUE(has(msg, "/optimizer/W/m: shape (15,), but its parameter /model/W has (5, 3)")) << msg;
  bool ok = true;
  const std::string report = inspect_checkpoint(path, &ok);
  EXPECT_FALSE(ok) << report;
  auto line = [&](const std::string& part) {
    const size_t at = report.find(part);
    return at == std::string::npos ? std::string() : report.substr(at, report.find('\n', at) - at);
  };
  EXPECT_TRUE(has(line("/optimizer/W/m "), "DAMAGED: shape (15,), but its parameter /model/W has (5, 3)")) << report;
  EXPECT_FALSE(has(line("/model/W "), "DAMAGED")) << report;
  EXPECT_TRUE(has(report, "status: DAMAGED (1 datasets)")) << report;
}

TEST(CheckpointResume, FallsBackWhenTheNewestIsDamaged) {
  test::TempDir dir;
  std::string one = save(dir, "step_1", 1);
  std::string two = save(dir, "step_2", 2);
  auto& comm = MpiCommunicator::world();
  EXPECT_EQ(find_resume_checkpoint(comm, dir.path()), two);
  flip_byte(two, "model", "W");
  EXPECT_EQ(find_resume_checkpoint(comm, dir.path()), one);
}

TEST(CheckpointResume, FallsBackWhenLatestNamesAMissingFileAndIgnoresTmp) {
  test::TempDir dir;
  save(dir, "step_1", 1);
  std::string two = save(dir, "step_2", 2);
  std::string three = save(dir, "step_3", 3);
  test::write_file(dir.file("step_4.h5.tmp"), "half-written garbage");
  test::write_file(dir.file("latest"), "step_9.h5\n");
  ASSERT_EQ(::unlink(three.c_str()), 0);
  auto& comm = MpiCommunicator::world();
  EXPECT_EQ(find_resume_checkpoint(comm, dir.path()), two);
  // A leftover tmp with the same name does not disturb the next save.
  test::write_file(dir.file("step_5.h5.tmp"), "crashed writer");
  std::string five = save(dir, "step_5", 5);
  EXPECT_EQ(find_resume_checkpoint(comm, dir.path()), five);
  EXPECT_NE(::access(dir.file("step_5.h5.tmp").c_str(), F_OK), 0);
}

// Note [All checkpoints damaged]: a directory whose checkpoints are all damaged, or whose
// `latest` names a file that is gone, held a run; it is refused, never taken for an empty one.
TEST(CheckpointResume, AllDamagedIsRefusedNotTakenForEmpty) {
  test::TempDir dir;
  std::string one = save(dir, "step_1", 1), two = save(dir, "step_2", 2);
  flip_byte(one, "model", "W");
  ASSERT_EQ(::truncate(two.c_str(), 100), 0);
  auto refusal = [&] {
    try {
      find_resume_checkpoint(MpiCommunicator::world(), dir.path());
    } catch (const DataError& e) {
      return std::string(e.what());
    }
    return std::string("no DataError");
  };
  std::string msg = refusal();
  EXPECT_TRUE(has(msg, "--resume auto: " + dir.path() + " holds 2 checkpoint file(s), none of them usable")) << msg;
  EXPECT_TRUE(has(msg, "--resume PATH")) << msg;
  ASSERT_EQ(::unlink(one.c_str()), 0);
  ASSERT_EQ(::unlink(two.c_str()), 0);
  msg = refusal();
  EXPECT_TRUE(has(msg, dir.path() + " holds no checkpoint file but a `latest` naming step_2.h5")) << msg;
  ASSERT_EQ(::unlink(dir.file("latest").c_str()), 0);
  EXPECT_EQ(find_resume_checkpoint(MpiCommunicator::world(), dir.path()), "");
}

// A `latest` that does not hold a file name of the directory is said and passed over.
TEST(CheckpointResume, LatestNamingAPathElsewhereIsSaidAndPassedOver) {
  test::TempDir dir;
  std::string one = save(dir, "step_1", 1);
  test::write_file(dir.file("latest"), "../elsewhere/step_9.h5\n");
  testing::internal::CaptureStderr();
  const std::string chosen = find_resume_checkpoint(MpiCommunicator::world(), dir.path());
  const std::string log = testing::internal::GetCapturedStderr();
  EXPECT_EQ(chosen, one);
  EXPECT_TRUE(has(log, dir.path() + "/latest holds '../elsewhere/step_9.h5', which is not a file name in")) << log;
}

// Note [Another shape: damage or another model]: a whole file whose /model or /optimizer
// dataset has another shape than this run's model gives is skipped naming the datasets and
// both shapes, unless the caller says that the file records another model: then it is
// taken, for the caller to refuse naming what differs.
TEST(CheckpointResume, AnotherShapeThanTheModelsIsSkippedUnlessItRecordsAnotherModel) {
  test::TempDir dir;
  auto& comm = MpiCommunicator::world();
  test::CheckpointFixture six(0, 1, /*w_rows=*/6), five(0, 2, /*w_rows=*/5);
  const std::string one = save_checkpoint(comm, dir.path(), "step_1", six.req, WriteMode::kGathered);
  const std::string two = save_checkpoint(comm, dir.path(), "step_2", five.req, WriteMode::kGathered);
  EXPECT_EQ(find_resume_checkpoint(comm, dir.path()), two);   // no expectation: the newest
  std::vector<std::string> asked;
  auto change = [&](const std::string& why) -> AnotherModel {
    return [&asked, why](const CheckpointReader& r) {
      asked.push_back(r.path() + " step " + std::to_string(r.meta().step));
      return why;
    };
  };
  testing::internal::CaptureStderr();
  EXPECT_EQ(find_resume_checkpoint(comm, dir.path(), &six.req, change("")), one);
  const std::string log = testing::internal::GetCapturedStderr();
  EXPECT_EQ(asked, std::vector<std::string>{two + " step 2"}) << "asked only about the file that differs";
  const size_t at = log.find("skipping damaged checkpoint: " + two);
  ASSERT_NE(at, std::string::npos) << log;
  const std::string warning = log.substr(at, log.find('\n', at) - at);
  EXPECT_TRUE(has(warning, "/model/W: file has (5, 3), this run's model expects (6, 3)")) << log;
  EXPECT_TRUE(has(warning, "/optimizer/W/m: file has (5, 3), this run's model expects (6, 3)")) << log;
  EXPECT_FALSE(has(warning, "/model/b")) << "only the datasets that differ: " << log;
  EXPECT_FALSE(has(log, "skipping damaged checkpoint: " + one)) << log;
  EXPECT_EQ(find_resume_checkpoint(comm, dir.path(), &six.req), one) << "no hook: the same";
  // It records another model: taken as it is.
  asked.clear();
  EXPECT_EQ(find_resume_checkpoint(comm, dir.path(), &six.req, change("dim: checkpoint 5, now 6")), two);
  EXPECT_EQ(asked, std::vector<std::string>{two + " step 2"});
  // A dataset missing is judged the same way.
  test::CheckpointFixture extra(0, 3, /*w_rows=*/5, /*with_extra=*/true);
  testing::internal::CaptureStderr();
  EXPECT_THROW(find_resume_checkpoint(comm, dir.path(), &extra.req, change("")), DataError) << "none fits";
  const std::string log2 = testing::internal::GetCapturedStderr();
  EXPECT_TRUE(has(log2, "missing /model/extra, /optimizer/extra/m, /optimizer/extra/v")) << log2;
}

TEST(CheckpointResume, EmptyDirectoryGivesNothing) {
  test::TempDir dir;
  EXPECT_EQ(find_resume_checkpoint(MpiCommunicator::world(), dir.path()), "");
  EXPECT_EQ(find_resume_checkpoint(MpiCommunicator::world(), dir.file("absent")), "");
}

TEST(CheckpointRetention, KeepsLastNEveryKthAndLatest) {
  test::TempDir dir;
  for (int s = 1; s <= 6; ++s) save(dir, "step_" + std::to_string(s), s);
  test::write_file(dir.file("latest"), "step_1.h5\n");
  test::write_file(dir.file("notes.h5"), "not hdf5");   // unreadable: left alone
  apply_retention(dir.path(), 2, 3);
  for (int s = 1; s <= 6; ++s) {
    bool exists = ::access(dir.file("step_" + std::to_string(s) + ".h5").c_str(), F_OK) == 0;
    bool want = s == 1 || s == 3 || s == 5 || s == 6;
    EXPECT_EQ(exists, want) << "step " << s;
  }
  EXPECT_EQ(::access(dir.file("notes.h5").c_str(), F_OK), 0);
}

}  // namespace
}  // namespace loom
