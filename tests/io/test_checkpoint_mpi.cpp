// Checkpoints as a collective: run by ctest as a singleton and under mpirun -np 2 and 3.
// Every rank saves into one shared directory (rank 0's TempDir, path broadcast).
#include <gtest/gtest.h>

#include <memory>

#include "dist/mpi_communicator.h"
#include "io/checkpoint.h"
#include "tests/io/checkpoint_fixture.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

// A directory every rank sees; rank 0 owns (and removes) it.
class SharedDir {
 public:
  explicit SharedDir(Communicator& comm) {
    if (comm.rank() == 0) {
      dir_ = std::make_unique<test::TempDir>();
      path_ = dir_->path();
    }
    int64_t len = static_cast<int64_t>(path_.size());
    comm.broadcast(Tensor::of(&len, 1), 0);
    path_.resize(static_cast<size_t>(len));
    comm.broadcast(Tensor::of(reinterpret_cast<uint8_t*>(path_.data()), len), 0);
  }
  ~SharedDir() { MpiCommunicator::world().barrier(); }   // nobody still reading when rank 0 removes it
  const std::string& path() const { return path_; }

 private:
  std::unique_ptr<test::TempDir> dir_;
  std::string path_;
};

void expect_round_trip(const std::string& path, const test::CheckpointFixture& fx, int world) {
  CheckpointReader r;
  r.open(path);
  EXPECT_EQ(r.meta().model_kind, "glove");
  EXPECT_EQ(r.meta().step, 7);
  EXPECT_EQ(r.meta().epoch, 2);
  EXPECT_EQ(r.meta().tokens_seen, 123456789012);
  EXPECT_EQ(r.meta().world_size, world);
  EXPECT_EQ(r.meta().config_toml, fx.req.meta.config_toml);
  EXPECT_FALSE(r.meta().loom_version.empty());
  EXPECT_EQ(r.meta().created_utc.size(), 20u) << r.meta().created_utc;

  test::CheckpointFixture back(0);
  back.params.zero_grads();
  std::memset(back.params.values().data(), 0, back.params.values().nbytes());
  r.read_model_into(back.params);
  for (int i = 0; i < fx.params.size(); ++i)
    EXPECT_TRUE(test::same_bits(back.params.value(i).data(), fx.params.value(i).data(), fx.params.value(i).nbytes()))
        << "parameter " << fx.params.entry(i).name;
  for (const auto& s : fx.req.slots) {
    std::vector<float> got(static_cast<size_t>(s.value.numel()), -1.0f);
    r.read_slot(s.param, s.slot, Tensor(got.data(), s.value.shape(), DType::kF32));
    EXPECT_TRUE(test::same_bits(got.data(), s.value.data(), s.value.nbytes())) << s.param << "/" << s.slot;
  }
  int64_t n = 0;
  std::vector<uint64_t> rng = r.read_state("rng", &n);
  ASSERT_EQ(n, 3);
  ASSERT_EQ(rng.size(), static_cast<size_t>(3 * world));
  for (int q = 0; q < world; ++q) {
    test::CheckpointFixture other(q);
    for (int64_t i = 0; i < n; ++i)
      EXPECT_EQ(rng[static_cast<size_t>(q * n + i)], other.req.state[0].mine[static_cast<size_t>(i)])
          << "rank row " << q << " index " << i;
  }
  std::vector<uint64_t> data = r.read_state("data", &n);
  EXPECT_EQ(n, 2);
  EXPECT_EQ(data[static_cast<size_t>(2 * (world - 1))], static_cast<uint64_t>(world - 1) * 1000 + 42);
  std::vector<std::string> tokens;
  std::vector<int64_t> counts;
  ASSERT_TRUE(r.has_vocab());
  r.read_vocab(&tokens, &counts);
  EXPECT_EQ(tokens, fx.tokens);
  EXPECT_EQ(counts, fx.counts);
}

class CheckpointMpi : public ::testing::TestWithParam<WriteMode> {};

TEST_P(CheckpointMpi, RoundTripIsBitExact) {
  Communicator& comm = MpiCommunicator::world();
  SharedDir dir(comm);
  test::CheckpointFixture fx(comm.rank());
  WriteMode used = WriteMode::kAuto;
  std::string path = save_checkpoint(comm, dir.path(), "step_7", fx.req, GetParam(), &used);
  EXPECT_EQ(path, dir.path() + "/step_7.h5");
  if (GetParam() == WriteMode::kAuto)   // the test directory is on one host's local disk
    EXPECT_EQ(used, WriteMode::kGathered);
  else
    EXPECT_EQ(used, GetParam());
  expect_round_trip(path, fx, comm.size());
  EXPECT_EQ(test::read_file(dir.path() + "/latest"), "step_7.h5\n");
  EXPECT_EQ(find_resume_checkpoint(comm, dir.path()), path);
}

INSTANTIATE_TEST_SUITE_P(Modes, CheckpointMpi,
                         ::testing::Values(WriteMode::kAuto, WriteMode::kGathered, WriteMode::kParallel),
                         [](const auto& p) { return std::string(write_mode_name(p.param)); });

TEST(CheckpointMpiModes, GatheredAndParallelGiveTheSameDatasetsAndChecksums) {
  Communicator& comm = MpiCommunicator::world();
  SharedDir dir(comm);
  test::CheckpointFixture fx(comm.rank());
  std::string g = save_checkpoint(comm, dir.path(), "gathered", fx.req, WriteMode::kGathered);
  std::string p = save_checkpoint(comm, dir.path(), "parallel", fx.req, WriteMode::kParallel);
  CheckpointReader rg, rp;
  rg.open(g);
  rp.open(p);
  const auto& a = rg.list_datasets();
  const auto& b = rp.list_datasets();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].path, b[i].path);
    EXPECT_EQ(a[i].dtype, b[i].dtype) << a[i].path;
    EXPECT_EQ(a[i].shape, b[i].shape) << a[i].path;
    EXPECT_EQ(a[i].stored_crc, b[i].stored_crc) << a[i].path;
    EXPECT_EQ(a[i].computed_crc, b[i].computed_crc) << a[i].path;
  }
  EXPECT_EQ(rg.read_state("rng"), rp.read_state("rng"));
  expect_round_trip(p, fx, comm.size());
}

TEST(CheckpointMpiFailure, EveryRankThrowsTheSameErrorAndLatestStays) {
  Communicator& comm = MpiCommunicator::world();
  SharedDir dir(comm);
  test::CheckpointFixture fx(comm.rank());
  std::string good = save_checkpoint(comm, dir.path(), "good", fx.req, WriteMode::kGathered);
  // "blocker" is a file, so DIR/blocker/NAME.h5.tmp cannot be created.
  if (comm.rank() == 0) test::write_file(dir.path() + "/blocker", "x");
  comm.barrier();
  std::string msg;
  try {
    save_checkpoint(comm, dir.path() + "/blocker", "next", fx.req, WriteMode::kGathered);
  } catch (const IoError& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("blocker/next.h5.tmp"), std::string::npos) << msg;
  EXPECT_EQ(test::read_file(dir.path() + "/latest"), "good.h5\n");
  EXPECT_EQ(find_resume_checkpoint(comm, dir.path()), good);
}

TEST(CheckpointMpiFailure, RanksThatDisagreeOnTheLayoutAreRefused) {
  Communicator& comm = MpiCommunicator::world();
  if (comm.size() < 2) GTEST_SKIP() << "needs 2 ranks";
  SharedDir dir(comm);
  test::CheckpointFixture fx(comm.rank());
  if (comm.rank() == 1) fx.req.state[0].mine.push_back(5);
  EXPECT_THROW(save_checkpoint(comm, dir.path(), "bad", fx.req, WriteMode::kAuto), DataError);
  comm.barrier();
  EXPECT_EQ(find_resume_checkpoint(comm, dir.path()), "");
}

}  // namespace
}  // namespace loom
