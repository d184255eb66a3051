// The HDF5 wrapper: attributes and datasets round-trip; failures name the file and object.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "core/error.h"
#include "io/h5.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

TEST(H5, AttributesAndRowsRoundTrip) {
  test::TempDir dir;
  const std::string path = dir.file("x.h5");
  {
    h5::File f = h5::File::create(path);
    f.set_attr("name", std::string("naïve"));
    f.set_attr("n", int64_t{-5});
    h5::Group g = f.create_group("g.with.dots");
    h5::Dataset d = g.create_dataset("d", h5::ElemType::kU64, {3, 2});
    uint64_t rows[4] = {1, 2, 3, ~uint64_t{0}};
    d.write_rows(1, 2, rows);
    uint64_t first[2] = {7, 8};
    d.write_rows(0, 1, first);
    d.set_attr_u32("crc32", 0xdeadbeefu);
  }
  h5::File f = h5::File::open(path, false);
  EXPECT_EQ(f.attr_string("name"), "naïve");
  EXPECT_EQ(f.attr_i64("n"), -5);
  h5::Dataset d = f.open_group("g.with.dots").open_dataset("d");
  EXPECT_EQ(d.dims(), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(d.type(), h5::ElemType::kU64);
  EXPECT_EQ(d.storage_bytes(), 48u);
  EXPECT_TRUE(d.file_offset().has_value());
  EXPECT_EQ(d.attr_u32("crc32"), 0xdeadbeefu);
  uint64_t all[6] = {};
  d.read_rows(0, 3, all);
  EXPECT_EQ(all[0], 7u);
  EXPECT_EQ(all[5], ~uint64_t{0});
}

// Every flat range [begin, begin + count) of a (3, 4, 5) array, of a (2, 1, 3, 2) array
// (a dimension of 1) and of a 1-D array reads the row-major elements at those positions:
// ranges that start and end inside rows, span whole rows, and cross the outer dimensions.
TEST(H5, ReadElementsReadsAnyFlatRange) {
  test::TempDir dir;
  const std::string path = dir.file("flat.h5");
  const std::vector<std::vector<int64_t>> shapes = {{3, 4, 5}, {2, 1, 3, 2}, {17}};
  {
    h5::File f = h5::File::create(path);
    for (size_t s = 0; s < shapes.size(); ++s) {
      h5::Dataset d = f.create_dataset("a" + std::to_string(s), h5::ElemType::kI64, shapes[s]);
      std::vector<int64_t> values(static_cast<size_t>(d.numel()));
      for (size_t i = 0; i < values.size(); ++i) values[i] = static_cast<int64_t>(1000 * s + i);
      d.write_rows(0, shapes[s][0], values.data());
    }
  }
  h5::File f = h5::File::open(path, false);
  for (size_t s = 0; s < shapes.size(); ++s) {
    h5::Dataset d = f.open_dataset("a" + std::to_string(s));
    const int64_t n = d.numel();
    for (int64_t begin = 0; begin <= n; ++begin) {
      for (int64_t count = 0; begin + count <= n; ++count) {
        std::vector<int64_t> got(static_cast<size_t>(count) + 1, -1);   // one guard element
        d.read_elements(begin, count, got.data());
        for (int64_t i = 0; i < count; ++i)
          ASSERT_EQ(got[static_cast<size_t>(i)], static_cast<int64_t>(1000 * s) + begin + i)
              << "shape " << s << " range [" << begin << ", " << begin + count << ") index " << i;
        ASSERT_EQ(got.back(), -1) << "shape " << s << " range [" << begin << ", " << begin + count
                                  << ") wrote past its end";
      }
    }
  }
}

TEST(H5, ErrorsNameTheFileAndObject) {
  test::TempDir dir;
  try {
    h5::File::open(dir.file("missing.h5"), false);
    FAIL() << "opened a missing file";
  } catch (const IoError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("missing.h5"), std::string::npos) << msg;
    // Note [HDF5 errors in a sentence]: what and why in words, not HDF5's call and stack.
    EXPECT_NE(msg.find("cannot open the file: No such file or directory"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("H5F"), std::string::npos) << msg;
    EXPECT_EQ(msg.find("h5.cpp"), std::string::npos) << msg;
  }
  h5::File f = h5::File::create(dir.file("y.h5"));
  try {
    f.open_group("model").open_dataset("W");
    FAIL();
  } catch (const IoError& e) {
    EXPECT_NE(std::string(e.what()).find("group /model"), std::string::npos) << e.what();
  }
  EXPECT_THROW(f.attr_i64("absent"), IoError);
}

// Note [Reserved files]: the blocks are the file's before HDF5 writes; close truncates to
// EOA; abandon() lets nothing pending reach the file.
TEST(H5, ReservedFileKeepsItsBlocksAndAbandonWritesNothing) {
  test::TempDir dir;
  constexpr uint64_t kReserve = 1 << 20;
  const std::string kept = dir.file("kept.h5"), dropped = dir.file("dropped.h5");
  {
    h5::File f = h5::File::create_reserved(kept, kReserve);
    struct stat st{};
    ASSERT_EQ(::stat(kept.c_str(), &st), 0);
    EXPECT_GE(static_cast<uint64_t>(st.st_blocks) * 512, kReserve);
    h5::Dataset d = f.create_group("g").create_dataset("d", h5::ElemType::kI64, {4});
    int64_t v[4] = {1, -2, 3, -4};
    d.write_rows(0, 4, v);
    EXPECT_LT(f.eoa(), kReserve);
    f.close();
  }
  struct stat st{};
  ASSERT_EQ(::stat(kept.c_str(), &st), 0);
  EXPECT_LT(static_cast<uint64_t>(st.st_size), kReserve);   // truncated to EOA at close
  {
    h5::File f = h5::File::create_reserved(dropped, kReserve);
    f.create_group("g").set_attr("x", int64_t{1});
    f.abandon();
    f.abandon();   // idempotent
  }
  int64_t back[4] = {};
  h5::File::open(kept, false).open_group("g").open_dataset("d").read_rows(0, 4, back);
  EXPECT_EQ(back[3], -4);
  EXPECT_FALSE(h5::File::open(dropped, false).has("g"));   // still the empty file
  EXPECT_THROW(h5::File::create_reserved(dir.file("no/such/dir.h5"), kReserve), IoError);
}

}  // namespace
}  // namespace loom
