// CorpusShard: shards tile the corpus for any world size (long lines, CRLF, empty files,
// gzip, xz), UTF-8 policies, errors that name files, cursors that resume and re-split.
#include <gtest/gtest.h>
#include <lzma.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "io/corpus_shard.h"
#include "io/tokenize.h"
#include "io/utf8.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

std::vector<std::string> tokens_of(const std::string& text) {
  std::vector<std::string> out;
  for_each_token(text, 0, [&](std::string_view t) { out.emplace_back(t); }, [] {});
  return out;
}

// Reads a whole shard; returns its tokens.
std::vector<std::string> read_shard(CorpusShard& shard, size_t max_chunks = SIZE_MAX) {
  std::vector<std::string> out;
  TextChunk chunk;
  for (size_t i = 0; i < max_chunks && shard.next(chunk); ++i)
    for_each_token(chunk.text, 0, [&](std::string_view t) { out.emplace_back(t); }, [] {});
  return out;
}

void write_gz(const std::string& path, const std::string& text) {
  gzFile f = gzopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  gzwrite(f, text.data(), static_cast<unsigned>(text.size()));
  gzclose(f);
}

void write_xz(const std::string& path, const std::string& text) {
  std::string out(text.size() + 1024, '\0');
  size_t pos = 0;
  ASSERT_EQ(lzma_easy_buffer_encode(6, LZMA_CHECK_CRC64, nullptr,
                                    reinterpret_cast<const uint8_t*>(text.data()), text.size(),
                                    reinterpret_cast<uint8_t*>(out.data()), &pos, out.size()),
            LZMA_OK);
  out.resize(pos);
  test::write_file(path, out);
}

std::string long_line(int words) {
  std::string s;
  for (int i = 0; i < words; ++i) s += "w" + std::to_string(i % 97) + (i % 7 ? " " : "  ");
  return s;
}

struct Fixture {
  test::TempDir dir;
  std::string all_text;   // what every shard together must yield
  CorpusOptions options;
  Fixture() {
    std::string a = "alpha beta gamma\nthe quick  brown fox\n\njumps over\n" + long_line(400) + "\nend\n";
    std::string b = "crlf line one\r\ncrlf two\r\n";
    std::string c = "no trailing newline here";
    std::string d = "gzip words in here\nand more\n";
    std::string e = long_line(300) + "\nxz tail\n";
    test::write_file(dir.file("a.txt"), a);
    test::write_file(dir.file("b.txt"), b);
    test::write_file(dir.file("c.txt"), c);
    test::write_file(dir.file("empty.txt"), "");
    write_gz(dir.file("d.gz"), d);
    write_xz(dir.file("e.xz"), e);
    all_text = a + b + c + "\n" + d + e;   // sorted order: a b c d e empty
    options.paths = {dir.path()};
    options.read_buffer_bytes = 97;       // far smaller than the long lines
    options.max_line_bytes = 40;
  }
};

TEST(CorpusShard, ShardsTileTheCorpusForAnyWorldSize) {
  Fixture fx;
  CorpusLayout layout = CorpusLayout::scan_local(fx.options);
  ASSERT_EQ(layout.files().size(), 6u);
  std::vector<std::string> want = tokens_of(fx.all_text);
  for (int world = 1; world <= 5; ++world) {
    std::vector<std::string> got;
    for (int r = 0; r < world; ++r) {
      CorpusShard shard(layout, fx.options, r, world);
      for (auto& t : read_shard(shard)) got.push_back(t);
    }
    ASSERT_EQ(got, want) << "world " << world;
  }
}

TEST(CorpusShard, CrlfAndEmptyLinesEndLines) {
  test::TempDir dir;
  test::write_file(dir.file("x.txt"), "a b\r\n\r\nc\r\n");
  CorpusOptions o;
  o.paths = {dir.file("x.txt")};
  CorpusLayout layout = CorpusLayout::scan_local(o);
  CorpusShard shard(layout, o, 0, 1);
  TextChunk chunk;
  ASSERT_TRUE(shard.next(chunk));
  int lines = 0;
  std::vector<std::string> toks;
  for_each_token(chunk.text, 0, [&](std::string_view t) { toks.emplace_back(t); }, [&] { ++lines; });
  EXPECT_EQ(toks, (std::vector<std::string>{"a", "b", "c"}));
  EXPECT_EQ(lines, 3);
}

TEST(CorpusShard, SingleLineCorpusSplitsAtWhitespace) {
  test::TempDir dir;
  std::string text = long_line(5000);   // one line, no newline at all
  test::write_file(dir.file("one.txt"), text);
  CorpusOptions o;
  o.paths = {dir.file("one.txt")};
  o.read_buffer_bytes = 1000;
  o.max_line_bytes = 100;
  CorpusLayout layout = CorpusLayout::scan_local(o);
  std::vector<std::string> got;
  for (int r = 0; r < 3; ++r) {
    CorpusShard shard(layout, o, r, 3);
    EXPECT_GT(shard.bytes_total(), text.size() / 4) << "rank " << r;
    for (auto& t : read_shard(shard)) got.push_back(t);
  }
  EXPECT_EQ(got, tokens_of(text));
}

TEST(CorpusShard, InvalidUtf8UnderBothPolicies) {
  test::TempDir dir;
  test::write_file(dir.file("bad.txt"), "good words\nbad \xFF\xFE word caf\xC3\xA9\n");
  CorpusOptions o;
  o.paths = {dir.file("bad.txt")};
  CorpusLayout layout = CorpusLayout::scan_local(o);
  {
    CorpusShard shard(layout, o, 0, 1);
    try {
      read_shard(shard);
      FAIL() << "no DataError";
    } catch (const DataError& e) {
      EXPECT_NE(std::string(e.what()).find(dir.file("bad.txt") + ":15"), std::string::npos) << e.what();
    }
  }
  o.utf8 = Utf8Policy::kReplace;
  CorpusShard shard(layout, o, 0, 1);
  auto toks = read_shard(shard);
  EXPECT_EQ(shard.replaced_sequences(), 2u);
  ASSERT_EQ(toks.size(), 6u);
  EXPECT_EQ(toks[3], "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(toks[5], "caf\xC3\xA9");
}

// The IoError of scanning `paths` and reading every shard of one rank, or "" when none.
std::string corpus_error(const std::vector<std::string>& paths) {
  CorpusOptions o;
  o.paths = paths;
  try {
    CorpusLayout layout = CorpusLayout::scan_local(o);
    CorpusShard shard(layout, o, 0, 1);
    read_shard(shard);
  } catch (const IoError& e) {
    return e.what();
  }
  return "";
}

TEST(CorpusShard, MissingOrUnreadablePathsAreNamed) {
  test::TempDir dir;
  const std::string missing = corpus_error({dir.file("missing.txt")});
  EXPECT_NE(missing.find(dir.file("missing.txt")), std::string::npos) << "'" << missing << "'";
  EXPECT_NE(corpus_error({dir.file("*.nothing")}), "");
  // A gzip file whose compressed data is damaged: zlib reads a file without the gzip magic
  // as plain text, so the damage is inside a real stream (its CRC or its codes fail).
  const std::string text = long_line(20000) + "\n";
  write_gz(dir.file("broken.gz"), text);
  std::string gz = test::read_file(dir.file("broken.gz"));
  ASSERT_GT(gz.size(), 100u);
  gz[gz.size() / 2] = static_cast<char>(gz[gz.size() / 2] ^ 0x55);
  test::write_file(dir.file("broken.gz"), gz);
  const std::string gz_error = corpus_error({dir.file("broken.gz")});
  EXPECT_NE(gz_error.find(dir.file("broken.gz")), std::string::npos) << "'" << gz_error << "'";
  test::write_file(dir.file("broken.xz"), "not xz");
  const std::string xz_error = corpus_error({dir.file("broken.xz")});
  EXPECT_NE(xz_error.find(dir.file("broken.xz")), std::string::npos) << "'" << xz_error << "'";
  // Unreadable: a FIFO where a text file is expected (root reads any file, so this case is
  // tried everywhere), and a file without read permission when not root.
  ASSERT_EQ(::mkfifo(dir.file("pipe.txt").c_str(), 0644), 0);
  const std::string fifo_error = corpus_error({dir.file("pipe.txt")});
  EXPECT_NE(fifo_error.find(dir.file("pipe.txt")), std::string::npos) << "'" << fifo_error << "'";
  if (::geteuid() != 0) {
    test::write_file(dir.file("locked.txt"), "words here\n");
    ASSERT_EQ(::chmod(dir.file("locked.txt").c_str(), 0), 0);
    const std::string locked = corpus_error({dir.file("locked.txt")});
    EXPECT_NE(locked.find(dir.file("locked.txt")), std::string::npos) << "'" << locked << "'";
    EXPECT_NE(locked.find("Permission denied"), std::string::npos) << "'" << locked << "'";
  }
}

TEST(CorpusShard, LowercaseIsUnicodeAware) {
  std::string s = "ÀÉÎ ΑΒΓ АБВЁ ABC Straße";
  utf8::lowercase_inplace(s.data(), s.size());
  EXPECT_EQ(s, "àéî αβγ абвё abc straße");
}

TEST(CorpusShard, CursorResumesExactlyAndResplits) {
  Fixture fx;
  CorpusLayout layout = CorpusLayout::scan_local(fx.options);
  std::vector<std::string> want = tokens_of(fx.all_text);
  // Two ranks read a few chunks each, then stop.
  std::vector<std::string> done;
  std::vector<CorpusCursor> cursors;
  for (int r = 0; r < 2; ++r) {
    CorpusShard shard(layout, fx.options, r, 2);
    auto part = read_shard(shard, 3);
    done.insert(done.end(), part.begin(), part.end());
    std::vector<uint64_t> words = shard.cursor().to_words();
    cursors.push_back(CorpusCursor::from_words(words));
    EXPECT_EQ(cursors.back(), shard.cursor());
  }
  // Same world size: resume each rank from its cursor.
  {
    std::vector<std::string> all;
    for (int r = 0; r < 2; ++r) {
      CorpusShard first(layout, fx.options, r, 2);
      auto head = read_shard(first, 3);
      CorpusShard rest(layout, fx.options, cursors[static_cast<size_t>(r)]);
      auto tail = read_shard(rest);
      all.insert(all.end(), head.begin(), head.end());
      all.insert(all.end(), tail.begin(), tail.end());
    }
    EXPECT_EQ(all, want);
  }
  // Another world size: the remaining work re-split over 3 ranks, nothing lost or repeated.
  std::vector<std::string> rest;
  for (int r = 0; r < 3; ++r) {
    CorpusShard shard(layout, fx.options, CorpusShard::resplit(layout, fx.options, cursors, r, 3));
    auto part = read_shard(shard);
    rest.insert(rest.end(), part.begin(), part.end());
  }
  std::vector<std::string> all = done;
  all.insert(all.end(), rest.begin(), rest.end());
  std::sort(all.begin(), all.end());
  std::sort(want.begin(), want.end());
  EXPECT_EQ(all, want);
}

}  // namespace
}  // namespace loom
