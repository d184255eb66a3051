// Checkpoints as a collective: run by ctest as a singleton and under mpirun -np 2 and 3.
// Every rank saves into one shared directory (rank 0's TempDir, path broadcast).
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <span>

#include "dist/mpi_communicator.h"
#include "io/checkpoint.h"
#include "io/h5.h"
#include "tests/io/checkpoint_fixture.h"
#include "tests/io/shared_dir.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

using test::SharedDir;

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

// The world split in two groups where it can be: at np 3 ranks {0, 1} (group 0) and {2},
// at np 2 {0} and {1}; a singleton is group 0 alone.
std::unique_ptr<MpiCommunicator> split_world(int* color) {
  MpiCommunicator& world = MpiCommunicator::world();
  *color = world.rank() < std::max(1, world.size() - 1) ? 0 : 1;
  return world.split(*color, world.rank());
}

// A group split from the world writes its checkpoint over its own ranks: group 0 in
// parallel (MPI-IO over the group's communicator) while the other group writes gathered
// (no MPI-IO at all). Over MPI_COMM_WORLD the MPI-IO open would wait for the other group
// forever, and the old world-size check refused parallel mode for a group.
TEST(CheckpointMpiSplit, AGroupWritesInParallelOverItsOwnRanks) {
  int color = 0;
  std::unique_ptr<MpiCommunicator> group = split_world(&color);
  ASSERT_TRUE(group->mpi_comm());
  SharedDir dir(*group);
  test::CheckpointFixture fx(group->rank());
  const WriteMode mode = color == 0 ? WriteMode::kParallel : WriteMode::kGathered;
  WriteMode used = WriteMode::kAuto;
  std::string path = save_checkpoint(*group, dir.path(), "group", fx.req, mode, &used);
  EXPECT_EQ(used, mode);
  expect_round_trip(path, fx, group->size());
  group->barrier();   // every member has read the file before its rank 0 removes it
}

// h5::File::create_mpio runs HDF5's MPI-IO driver over group 0's ranks only (the other
// group writes its file serially): each member writes its row collectively, and the file
// holds every member's row.
TEST(H5Mpio, AFileCreatedOverAGroupHoldsEveryMembersRow) {
  int color = 0;
  std::unique_ptr<MpiCommunicator> group = split_world(&color);
  SharedDir dir(*group);
  const std::string path = dir.path() + "/mpio.h5";
  const int rank = group->rank(), size = group->size();
  {
    h5::File f = color == 0 ? h5::File::create_mpio(path, *group) : h5::File::create(path);
    {
      h5::Dataset d = f.create_dataset("rows", h5::ElemType::kI64, {size, 3});
      int64_t mine[3] = {rank * 10, rank * 10 + 1, rank * 10 + 2};
      d.write_rows(rank, 1, mine);   // collective in the MPI-IO file
    }
    f.close();   // collective
  }
  group->barrier();
  h5::File f = h5::File::open(path, false);
  h5::Dataset d = f.open_dataset("rows");
  ASSERT_EQ(d.dims(), (std::vector<int64_t>{size, 3}));
  std::vector<int64_t> all(static_cast<size_t>(3 * size), -1);
  d.read_rows(0, size, all.data());
  for (int q = 0; q < size; ++q)
    for (int i = 0; i < 3; ++i)
      EXPECT_EQ(all[static_cast<size_t>(3 * q + i)], q * 10 + i) << "row " << q << " index " << i << " rank " << rank;
  group->barrier();
}

// The world's collectives, but no MPI communicator under them, and the name "mpi": the
// writer asks mpi_comm(), not backend(), whether MPI-IO may run.
class WorldWithoutMpiIo final : public Communicator {
 public:
  explicit WorldWithoutMpiIo(Communicator& inner) : inner_(inner) {}
  int rank() const override { return inner_.rank(); }
  int size() const override { return inner_.size(); }
  std::string_view backend() const override { return inner_.backend(); }
  MpiCommHandle mpi_comm() const override { return {}; }
  void allreduce(Tensor buf, const CollectiveOptions& opt) override { inner_.allreduce(buf, opt); }
  std::unique_ptr<Work> allreduce_async(Tensor buf, const CollectiveOptions& opt) override {
    return inner_.allreduce_async(buf, opt);
  }
  void broadcast(Tensor buf, int root) override { inner_.broadcast(buf, root); }
  void allgatherv(Tensor mine, Tensor all, std::span<const int64_t> counts) override {
    inner_.allgatherv(mine, all, counts);
  }
  void alltoallv(Tensor send, std::span<const int64_t> send_counts, Tensor recv,
                 std::span<const int64_t> recv_counts) override {
    inner_.alltoallv(send, send_counts, recv, recv_counts);
  }
  void barrier() override { inner_.barrier(); }
  void abort(std::string_view why, int exit_code) override { inner_.abort(why, exit_code); }
  using Communicator::allreduce;

 private:
  Communicator& inner_;
};

TEST(CheckpointMpiModes, ParallelNeedsAnMpiCommunicatorUnderTheRanks) {
  WorldWithoutMpiIo comm(MpiCommunicator::world());
  SharedDir dir(comm);
  test::CheckpointFixture fx(comm.rank());
  std::string msg;
  try {
    save_checkpoint(comm, dir.path(), "parallel", fx.req, WriteMode::kParallel);
  } catch (const IoError& e) {
    msg = e.what();
  }
  EXPECT_NE(msg.find("no MPI communicator over its ranks"), std::string::npos) << "message: " << msg;
  WriteMode used = WriteMode::kParallel;
  std::string path = save_checkpoint(comm, dir.path(), "auto", fx.req, WriteMode::kAuto, &used);
  EXPECT_EQ(used, WriteMode::kGathered);
  expect_round_trip(path, fx, comm.size());
}

}  // namespace
}  // namespace loom
