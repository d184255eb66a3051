// vocab.h5 (Note [vocab.h5] in io/vocab.h): written with the checkpoints' checksums, read
// back verified; damage is named by dataset; a format_version 1 file (no checksums) still
// loads, unverified; h5py and zlib compute the same CRCs from the documented convention
// (Note [CRC of string datasets] in io/checksum.h).
#include <gtest/gtest.h>

#include <sys/stat.h>

#include <chrono>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/checksum.h"
#include "io/h5.h"
#include "io/vocab.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

Vocab sample_vocab() { return Vocab({"the", "ab", "c", "naïve", "zebra"}, {50, 7, 7, 3, 1}); }

void flip_byte_at(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x01);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

TEST(VocabH5, RoundTripIsVerified) {
  test::TempDir dir;
  const std::string path = dir.file("vocab.h5");
  write_vocab_h5(sample_vocab(), path);
  bool verified = false;
  EXPECT_EQ(read_vocab_h5(path, &verified), sample_vocab());
  EXPECT_TRUE(verified);
  h5::File f = h5::File::open(path, false);
  EXPECT_EQ(f.attr_string("format"), "loom-vocab");
  EXPECT_EQ(f.attr_i64("format_version"), kVocabH5Version);
  const h5::Group g = f.open_group("vocab");
  EXPECT_EQ(g.open_dataset("tokens").attr_u32("crc32"), crc32_of_strings(sample_vocab().tokens()));
  const std::vector<int64_t> counts = sample_vocab().counts();
  EXPECT_EQ(g.open_dataset("counts").attr_u32("crc32"), crc32_update(0, counts.data(), counts.size() * 8));
}

TEST(VocabH5, DamageIsNamedByDataset) {
  test::TempDir dir;
  const std::string path = dir.file("vocab.h5");
  write_vocab_h5(sample_vocab(), path);
  uint64_t counts_at = 0;
  {
    h5::File f = h5::File::open(path, false);
    const auto offset = f.open_group("vocab").open_dataset("counts").file_offset();
    ASSERT_TRUE(offset.has_value());
    counts_at = *offset;
  }
  flip_byte_at(path, counts_at);   // the first count's lowest byte
  try {
    read_vocab_h5(path);
    FAIL() << "damaged counts were read";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("/vocab/counts"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("checksum mismatch"), std::string::npos) << e.what();
  }
  // A token's bytes (in HDF5's heap: found by content).
  write_vocab_h5(sample_vocab(), path);
  const std::string bytes = test::read_file(path);
  const size_t zebra = bytes.find("zebra");
  ASSERT_NE(zebra, std::string::npos);
  flip_byte_at(path, zebra);
  try {
    read_vocab_h5(path);
    FAIL() << "a damaged token was read";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("/vocab/tokens"), std::string::npos) << e.what();
  }
}

TEST(VocabH5, VersionOneWithoutChecksumsStillLoadsUnverified) {
  test::TempDir dir;
  const std::string path = dir.file("old.h5");
  const Vocab v = sample_vocab();
  {
    h5::File f = h5::File::create(path);
    f.set_attr("format", std::string("loom-vocab"));
    f.set_attr("format_version", int64_t{1});
    h5::Group g = f.create_group("vocab");
    g.create_dataset("tokens", h5::ElemType::kString, {v.size()}).write_strings(v.tokens());
    g.create_dataset("counts", h5::ElemType::kI64, {v.size()}).write_rows(0, v.size(), v.counts().data());
  }
  bool verified = true;
  EXPECT_EQ(read_vocab_h5(path, &verified), v);
  EXPECT_FALSE(verified);
}

TEST(VocabH5, NotAVocabularyIsRefusedByName) {
  test::TempDir dir;
  const std::string path = dir.file("other.h5");
  {
    h5::File f = h5::File::create(path);
    f.set_attr("format", std::string("loom-checkpoint"));
  }
  try {
    read_vocab_h5(path);
    FAIL();
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("loom-checkpoint"), std::string::npos) << e.what();
  }
}

// The documented convention, computed by h5py and zlib alone.
TEST(VocabH5, PythonComputesTheSameChecksums) {
  struct stat st {};
  if (::stat("/usr/bin/python3", &st) != 0) LOOM_SKIP_OR_FAIL("/usr/bin/python3 not found");
  if (test::run({"/usr/bin/python3", "-c", "import h5py"}, std::chrono::seconds(60)).status != 0)
    LOOM_SKIP_OR_FAIL("h5py missing: apt-get install python3-h5py");
  test::TempDir dir;
  write_vocab_h5(sample_vocab(), dir.file("vocab.h5"));
  const std::string script =
      "import sys, zlib, h5py\n"
      "with h5py.File(sys.argv[1], 'r') as f:\n"
      "    t, c = f['vocab/tokens'], f['vocab/counts']\n"
      "    crc = 0\n"
      "    for s in t.asstr()[()]:\n"
      "        crc = zlib.crc32(s.encode('utf-8') + b'\\0', crc)\n"
      "    assert crc == int(t.attrs['crc32']), (crc, t.attrs['crc32'])\n"
      "    assert zlib.crc32(c[()].astype('<i8').tobytes()) == int(c.attrs['crc32'])\n"
      "    assert f.attrs['format'] == 'loom-vocab' and int(f.attrs['format_version']) == 2\n"
      "print('ok')\n";
  test::write_file(dir.file("check.py"), script);
  const test::RunResult r = test::run({"/usr/bin/python3", dir.file("check.py"), dir.file("vocab.h5")},
                                      std::chrono::seconds(120));
  EXPECT_EQ(r.status, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("ok"), std::string::npos) << r.out << r.err;
}

}  // namespace
}  // namespace loom
