// Checkpoints seen from outside loom: h5py (Debian's /usr/bin/python3), h5dump, a disk
// that fills up in the middle of a save (file size limit on a child process), inspect.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>

#include "dist/mpi_communicator.h"
#include "io/checkpoint.h"
#include "tests/io/checkpoint_fixture.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

using namespace std::chrono_literals;

std::string save_fixture(const test::TempDir& dir, WriteMode mode = WriteMode::kGathered) {
  test::CheckpointFixture fx(0);
  return save_checkpoint(MpiCommunicator::world(), dir.path(), "step_7", fx.req, mode);
}

// Python run by Debian's interpreter (the one with python3-h5py), not pyenv's.
constexpr const char* kSystemPython = "/usr/bin/python3";

// Checks names, shapes, dtypes, attributes, and that crc32 is zlib.crc32 of the array bytes.
constexpr const char* kH5pyCheck = R"PY(
import sys, zlib, h5py, numpy as np
f = h5py.File(sys.argv[1], 'r')
a = f.attrs
assert a['format'] == 'loom-checkpoint', a['format']
assert int(a['format_version']) == 1
assert a['model_kind'] == 'glove' and int(a['step']) == 7 and int(a['epoch']) == 2
assert int(a['tokens_seen']) == 123456789012 and int(a['world_size']) == 1
assert 'dim = 3' in a['config'] and a['created_utc'].endswith('Z')
assert sorted(f['model'].keys()) == ['W', 'b', 'h.0.attn.c_attn.weight'], list(f['model'].keys())
assert f['model/W'].shape == (5, 3) and f['model/W'].dtype == np.float32
assert f['model/h.0.attn.c_attn.weight'].shape == (12, 4)
assert f['model/b'].shape == (7,)
assert f['optimizer/h.0.attn.c_attn.weight/m'].shape == (12, 4)
assert f['state/rng'].shape == (1, 3) and f['state/rng'].dtype == np.uint64
assert int(f['state/rng'][0, 2]) == 2**64 - 1
toks = [t.decode() if isinstance(t, bytes) else t for t in f['vocab/tokens'][()]]
assert toks == ['the', 'of', 'na\u00efve', '\u65e5\u672c\u8a9e', 'a b', ''], toks
assert list(f['vocab/counts'][()]) == [1000, 500, 7, 3, 2, 1]
def visit(name, obj):
    if isinstance(obj, h5py.Dataset) and obj.dtype.kind != 'O':
        data = obj[()].astype(obj.dtype.newbyteorder('<')).tobytes()
        assert zlib.crc32(data) == int(obj.attrs['crc32']), name
f.visititems(visit)
print('h5py-ok')
)PY";

bool system_python_has_h5py() {
  if (::access(kSystemPython, X_OK) != 0) return false;
  return test::run({kSystemPython, "-c", "import h5py"}, 60s).status == 0;
}

TEST(CheckpointExternal, H5pyReadsBothWriteModes) {
  if (!system_python_has_h5py())
    LOOM_SKIP_OR_FAIL(std::string(kSystemPython) + " has no h5py: apt-get install python3-h5py (scripts/setup.sh does)");
  for (WriteMode mode : {WriteMode::kGathered, WriteMode::kParallel}) {
    test::TempDir dir;
    std::string path = save_fixture(dir, mode);
    test::RunResult r = test::run({kSystemPython, "-c", kH5pyCheck, path}, 120s);
    EXPECT_EQ(r.status, 0) << write_mode_name(mode) << ":\n" << r.out << r.err;
    EXPECT_NE(r.out.find("h5py-ok"), std::string::npos) << r.out << r.err;
  }
}

TEST(CheckpointExternal, H5dumpReadsTheHeader) {
  test::TempDir dir;
  std::string path = save_fixture(dir);
  test::RunResult r = test::run({"h5dump", "-H", path}, 60s);
  if (r.status == 127 || (r.out + r.err).find("No such file") != std::string::npos)
    LOOM_SKIP_OR_FAIL("h5dump not found: apt-get install hdf5-tools");
  ASSERT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("DATASET \"h.0.attn.c_attn.weight\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("ATTRIBUTE \"crc32\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("H5T_IEEE_F32LE"), std::string::npos) << r.out;
}

TEST(CheckpointExternal, DiskFullLeavesThePreviousCheckpointAndLatest) {
  const char* tool = std::getenv("LOOM_CKPT_TOOL");
  ASSERT_NE(tool, nullptr) << "LOOM_CKPT_TOOL is not set (run through ctest)";
  test::TempDir dir;
  test::RunResult first = test::run({tool, dir.path(), "step_1", "1000", "1"}, 120s);
  ASSERT_EQ(first.status, 0) << first.out << first.err;
  // 4 MB of parameters under a 1 MiB file size limit: the data write fails with EFBIG.
  test::RunResult second = test::run({tool, dir.path(), "step_2", "1000000", "2", "1048576"}, 120s);
  // The tool reports the error and exits 1: cleanly, never a crash (the reservation fails
  // before HDF5 has the file; Note [Reserved files] in io/h5.h).
  EXPECT_EQ(second.status, 1) << second.out << second.err;
  EXPECT_NE(second.err.find("ckpt_tool: "), std::string::npos) << second.err;
  EXPECT_NE(second.err.find("step_2.h5.tmp"), std::string::npos) << second.err;
  EXPECT_NE(second.err.find("File too large"), std::string::npos) << second.err;
  EXPECT_EQ(test::read_file(dir.file("latest")), "step_1.h5\n");
  EXPECT_NE(::access(dir.file("step_2.h5.tmp").c_str(), F_OK), 0) << "tmp file left behind";
  EXPECT_NE(::access(dir.file("step_2.h5").c_str(), F_OK), 0);
  EXPECT_EQ(find_resume_checkpoint(MpiCommunicator::world(), dir.path()), dir.file("step_1.h5"));
  CheckpointReader r;
  r.open(dir.file("step_1.h5"));
  EXPECT_EQ(r.meta().step, 1);
}

TEST(CheckpointExternal, InspectListsEverything) {
  test::TempDir dir;
  std::string path = save_fixture(dir);
  bool ok = false;
  std::string report = inspect_checkpoint(path, &ok);
  EXPECT_TRUE(ok) << report;
  for (const char* part : {"model_kind glove", "step 7", "kind = \"glove\"", "/model/W  float32 (5, 3)  60 B",
                           "/optimizer/b/v", "/state/rng  uint64 (1, 3)", "/vocab/tokens  string (6,)",
                           "status: OK"})
    EXPECT_NE(report.find(part), std::string::npos) << part << "\n" << report;
}

}  // namespace
}  // namespace loom
