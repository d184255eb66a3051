// Checkpoint data through the host staging buffer (Note [Staging device data] in
// io/checkpoint_stage.h), driven on the CPU: a test hook stages host data too, in pieces
// of 1, 7 and 4099 bytes, none of which divides every array. Run as a singleton and at
// np 2 (parallel mode: each rank stages its own slab).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <tuple>

#include "dist/mpi_communicator.h"
#include "io/checkpoint.h"
#include "tests/io/shared_dir.h"
#include "tests/io/staging_fixture.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

using namespace std::chrono_literals;

constexpr uint64_t kChunks[] = {1, 7, 4099};

void expect_values_equal(const ParamStore& got, const test::OddCheckpoint& want) {
  for (int i = 0; i < want.params.size(); ++i) {
    const float* g = got.value(i).f32();
    const float* w = want.params.value(i).f32();
    for (int64_t k = 0; k < want.params.value(i).numel(); ++k)
      ASSERT_EQ(g[k], w[k]) << "parameter " << want.params.entry(i).name << " index " << k;
  }
}

// Staged slots, /state and /vocab read back as written.
void expect_rest_equal(const CheckpointReader& r, const test::OddCheckpoint& want, int world) {
  for (const auto& s : want.req.slots) {
    std::vector<float> got(static_cast<size_t>(s.value.numel()), -1.0f);
    r.read_slot(s.param, s.slot, Tensor(got.data(), s.value.shape(), DType::kF32));
    for (size_t k = 0; k < got.size(); ++k)
      ASSERT_EQ(got[k], s.value.f32()[k]) << "slot " << s.param << "/" << s.slot << " index " << k;
  }
  int64_t n = 0;
  std::vector<uint64_t> rng = r.read_state("rng", &n);
  ASSERT_EQ(rng.size(), static_cast<size_t>(3 * world));
  for (int q = 0; q < world; ++q) {
    test::OddCheckpoint other(q);
    for (int64_t i = 0; i < n; ++i)
      EXPECT_EQ(rng[static_cast<size_t>(q * n + i)], other.req.state[0].mine[static_cast<size_t>(i)])
          << "state row " << q << " index " << i;
  }
  std::vector<std::string> tokens;
  std::vector<int64_t> counts;
  r.read_vocab(&tokens, &counts);
  EXPECT_EQ(tokens, want.tokens);
  EXPECT_EQ(counts, want.counts);
}

class StagedSave : public ::testing::TestWithParam<std::tuple<uint64_t, WriteMode>> {};

// A save whose every array is staged in pieces writes the same data bytes and checksums as
// a direct save of the same values, and the checksums are those of the values themselves.
TEST_P(StagedSave, WritesTheDirectSavesBytesAndChecksums) {
  const auto [chunk, mode] = GetParam();
  Communicator& comm = MpiCommunicator::world();
  test::SharedDir dir(comm);
  test::OddCheckpoint ck(comm.rank());
  const std::string direct = save_checkpoint(comm, dir.path(), "direct", ck.req, mode);
  std::string staged;
  {
    test::ForcedStaging forced(chunk);
    WriteMode used = WriteMode::kAuto;
    staged = save_checkpoint(comm, dir.path(), "staged", ck.req, mode, &used);
    EXPECT_EQ(used, mode);
  }
  test::expect_same_data(direct, staged);
  test::expect_checksums_of(staged, ck);
  comm.barrier();
}

INSTANTIATE_TEST_SUITE_P(Chunks, StagedSave,
                         ::testing::Combine(::testing::ValuesIn(kChunks),
                                            ::testing::Values(WriteMode::kGathered, WriteMode::kParallel)),
                         [](const auto& p) {
                           return "chunk" + std::to_string(std::get<0>(p.param)) + "_" +
                                  write_mode_name(std::get<1>(p.param));
                         });

class StagedLoad : public ::testing::TestWithParam<uint64_t> {};

// A load that stages every array in pieces (and verifies the CRC over them) gives the
// values that were saved: parameters, slots, state and vocab.
TEST_P(StagedLoad, ReadsTheSavedValues) {
  Communicator& comm = MpiCommunicator::world();
  test::SharedDir dir(comm);
  test::OddCheckpoint ck(comm.rank());
  const std::string path = save_checkpoint(comm, dir.path(), "direct", ck.req, WriteMode::kGathered);
  {
    test::ForcedStaging forced(GetParam());
    CheckpointReader r;
    r.open(path);
    ParamStore back;
    test::OddCheckpoint::declare(back);
    back.finalize();
    r.read_model_into(back);
    expect_values_equal(back, ck);
    expect_rest_equal(r, ck, comm.size());
  }
  comm.barrier();
}

INSTANTIATE_TEST_SUITE_P(Chunks, StagedLoad, ::testing::ValuesIn(kChunks),
                         [](const auto& p) { return "chunk" + std::to_string(p.param); });

// A staged load still refuses data that does not match its checksum, naming the dataset.
// Every rank damages its own file: it saves as a group of one.
TEST(StagedLoadDamage, AChecksumMismatchIsRefusedNamingTheDataset) {
  MpiCommunicator& world = MpiCommunicator::world();
  std::unique_ptr<MpiCommunicator> self = world.split(world.rank(), 0);
  test::ForcedStaging forced(7);   // before open(): a reader takes its staging settings there
  test::TempDir dir;
  test::OddCheckpoint ck(0);
  const std::string path = save_checkpoint(*self, dir.path(), "ck", ck.req, WriteMode::kGathered);
  CheckpointReader r;
  r.open(path);   // verifies every checksum here, then the file changes under the reader
  {
    std::string bytes = test::data_bytes(path, "/model/big");
    h5::File f = h5::File::open(path, false);
    const uint64_t at = *test::open_dataset_at(f, "/model/big").file_offset() + 5000;
    FILE* out = std::fopen(path.c_str(), "r+b");
    ASSERT_NE(out, nullptr);
    std::fseek(out, static_cast<long>(at), SEEK_SET);
    const char flipped = static_cast<char>(bytes[5000] ^ 0x40);
    std::fwrite(&flipped, 1, 1, out);
    std::fclose(out);
  }
  ParamStore back;
  test::OddCheckpoint::declare(back);
  back.finalize();
  try {
    r.read_model_into(back);
    FAIL() << "read a damaged dataset through the staging buffer";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("/model/big: checksum mismatch"), std::string::npos) << e.what();
  }
}

// Checkpoints written by other tools may store datasets in chunks: h5py writes one in
// DESIGN.md's layout whose chunks (whole, uncompressed: the reader compares the storage
// size with the logical size) no staging piece lines up with, (3, 13) column blocks of a
// (3, 1001) array among them; loom opens it (every checksum verified) and loads it
// directly and staged.
constexpr const char* kChunkedCheckpoint = R"PY(
import sys, zlib, h5py, numpy as np
f = h5py.File(sys.argv[1], 'w')
for k, v in [('format', 'loom-checkpoint'), ('loom_version', 'h5py'), ('model_kind', 'glove'),
             ('created_utc', '2024-01-02T03:04:05Z'), ('config', '[model]\n')]:
    f.attrs[k] = v
for k, v in [('format_version', 1), ('step', 3), ('epoch', 0), ('tokens_seen', 9), ('world_size', 1)]:
    f.attrs[k] = np.int64(v)
def put(path, data, chunks):
    d = f.create_dataset(path, data=data, chunks=chunks)
    d.attrs['crc32'] = np.uint32(zlib.crc32(data.astype(data.dtype.newbyteorder('<')).tobytes()))
shapes = {'W': ((37, 11), (1, 11)), 'h.0.mlp.c_fc.bias': ((5,), (1,)), 'row': ((1, 129), (1, 43)),
          'big': ((3, 1001), (3, 13))}
for i, (name, (shape, chunks)) in enumerate(shapes.items()):
    n = int(np.prod(shape))
    put('model/' + name, (np.arange(n, dtype=np.float32) * 0.5 - i).reshape(shape), chunks)
    put('optimizer/' + name + '/m', (np.arange(n, dtype=np.float32) * -0.25).reshape(shape), None)
put('state/rng', np.array([[1, 2, 2**64 - 1]], dtype=np.uint64), (1, 1))
f.close()
print('written')
)PY";

TEST(StagedLoadExternal, AChunkedCheckpointLoadsDirectlyAndStaged) {
  constexpr const char* kPython = "/usr/bin/python3";
  if (::access(kPython, X_OK) != 0 || test::run({kPython, "-c", "import h5py"}, 60s).status != 0)
    LOOM_SKIP_OR_FAIL(std::string(kPython) + " has no h5py: apt-get install python3-h5py (scripts/setup.sh does)");
  test::TempDir dir;
  const std::string path = dir.file("chunked.h5");
  test::RunResult made = test::run({kPython, "-c", kChunkedCheckpoint, path}, 120s);
  ASSERT_EQ(made.status, 0) << made.out << made.err;
  for (uint64_t chunk : {uint64_t{0}, uint64_t{7}, uint64_t{1000}}) {
    test::ForcedStaging forced(chunk);   // 0: the defaults (host data read in place)
    CheckpointReader r;
    r.open(path);
    ParamStore back;
    test::OddCheckpoint::declare(back);
    back.finalize();
    r.read_model_into(back);
    for (int i = 0; i < back.size(); ++i) {
      const Tensor v = back.value(i);
      std::vector<float> m(static_cast<size_t>(v.numel()));
      r.read_slot(back.entry(i).name, "m", Tensor(m.data(), v.shape(), DType::kF32));
      for (int64_t k = 0; k < v.numel(); ++k) {
        ASSERT_EQ(v.f32()[k], static_cast<float>(k) * 0.5f - static_cast<float>(i))
            << back.entry(i).name << " index " << k << " chunk " << chunk;
        ASSERT_EQ(m[static_cast<size_t>(k)], static_cast<float>(k) * -0.25f)
            << back.entry(i).name << "/m index " << k << " chunk " << chunk;
      }
    }
    EXPECT_EQ(r.read_state("rng"), (std::vector<uint64_t>{1, 2, ~uint64_t{0}})) << "chunk " << chunk;
  }
}

}  // namespace
}  // namespace loom
