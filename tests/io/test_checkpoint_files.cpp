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
