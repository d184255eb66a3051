// Token shards: write, map, read; refusal of damaged, truncated and foreign shards.
#include <gtest/gtest.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/token_shard.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

constexpr uint64_t kPrint = 0x1234ABCD5678EF00ULL;

std::vector<uint32_t> sample_tokens(size_t n, uint32_t vocab) {
  std::vector<uint32_t> ids(n);
  for (size_t i = 0; i < n; ++i) ids[i] = static_cast<uint32_t>((i * 2654435761u) % vocab);
  return ids;
}

void write_shard(const std::string& path, const std::vector<uint32_t>& ids, uint32_t vocab,
                 uint64_t docs = 3) {
  TokenShardWriter w(path, vocab, kPrint);
  // In two appends, one of them large enough to be flushed on its own.
  const size_t half = ids.size() / 2;
  w.append(std::span(ids).first(half));
  w.append(std::span(ids).subspan(half));
  w.add_documents(docs);
  w.commit();
}

uint64_t file_size(const std::string& path) {
  struct stat st{};
  EXPECT_EQ(::stat(path.c_str(), &st), 0) << path;
  return static_cast<uint64_t>(st.st_size);
}

bool exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

void flip_byte(const std::string& path, uint64_t offset) {
  std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(offset));
  char c = 0;
  f.read(&c, 1);
  c = static_cast<char>(c ^ 0x40);
  f.seekp(static_cast<std::streamoff>(offset));
  f.write(&c, 1);
}

// The message of the DataError opening `path` raises ("" when it opens).
std::string open_error(const std::string& path, const TokenShardCheck& check = {}) {
  try {
    TokenShard::open(path, check);
  } catch (const DataError& e) {
    return e.what();
  }
  return "";
}

TEST(TokenShard, WritesAndMapsBothWidths) {
  test::TempDir dir;
  for (uint32_t vocab : {50257u, 65536u, 65537u, 200000u}) {
    SCOPED_TRACE("vocab " + std::to_string(vocab));
    const std::string path = dir.file("shard" + std::to_string(vocab) + ".bin");
    const std::vector<uint32_t> ids = sample_tokens(700000, vocab);
    write_shard(path, ids, vocab, 7);
    EXPECT_FALSE(exists(path + ".tmp"));
    const uint32_t width = vocab <= 65536 ? 2 : 4;
    EXPECT_EQ(file_size(path), 64 + ids.size() * width);
    TokenShard shard = TokenShard::open(path, {.fingerprint = kPrint});
    EXPECT_EQ(shard.size(), ids.size());
    EXPECT_EQ(shard.info().token_width, width);
    EXPECT_EQ(shard.info().document_count, 7u);
    EXPECT_EQ(shard.info().vocab_size, vocab);
    EXPECT_EQ(shard.info().fingerprint, kPrint);
    EXPECT_EQ(width == 2 ? shard.tokens_u16().size() : shard.tokens_u32().size(), ids.size());
    EXPECT_TRUE(width == 2 ? shard.tokens_u32().empty() : shard.tokens_u16().empty());
    for (size_t i = 0; i < ids.size(); i += 997) ASSERT_EQ(shard[i], ids[i]) << "token " << i;
    std::vector<uint32_t> window(513);
    shard.copy(ids.size() - 513, window);
    EXPECT_TRUE(std::equal(window.begin(), window.end(), ids.end() - 513));
    EXPECT_EQ(read_token_shard_info(path).token_count, ids.size());
  }
}

TEST(TokenShard, EmptyShardAndMoves) {
  test::TempDir dir;
  write_shard(dir.file("empty.bin"), {}, 100, 0);
  TokenShard a = TokenShard::open(dir.file("empty.bin"));
  EXPECT_EQ(a.size(), 0u);
  TokenShard b = std::move(a);
  EXPECT_EQ(b.path(), dir.file("empty.bin"));
}

TEST(TokenShard, RefusesDamagedTruncatedAndForeignShardsNamingTheFile) {
  test::TempDir dir;
  const std::string good = dir.file("good.bin");
  const std::vector<uint32_t> ids = sample_tokens(1000, 50257);
  write_shard(good, ids, 50257);
  auto copy_of = [&](const std::string& name) {
    const std::string path = dir.file(name);
    test::write_file(path, test::read_file(good));
    return path;
  };
  const std::string truncated = copy_of("truncated.bin");
  ASSERT_EQ(::truncate(truncated.c_str(), 64 + 2 * 1000 - 1), 0);
  EXPECT_TRUE(open_error(truncated).starts_with(truncated + ": size 2063 bytes")) << open_error(truncated);
  EXPECT_NE(open_error(truncated).find("truncated"), std::string::npos);

  const std::string stub = copy_of("stub.bin");
  ASSERT_EQ(::truncate(stub.c_str(), 20), 0);
  EXPECT_TRUE(open_error(stub).starts_with(stub + ": truncated: 20 bytes")) << open_error(stub);

  const std::string header = copy_of("header.bin");
  flip_byte(header, 17);   // inside the token count
  EXPECT_EQ(open_error(header), header + ": header checksum mismatch: the header is damaged; "
                                         "tokenize again");

  const std::string tokens = copy_of("tokens.bin");
  flip_byte(tokens, 64 + 777);
  EXPECT_TRUE(open_error(tokens).starts_with(tokens + ": token checksum mismatch"));
  EXPECT_EQ(open_error(tokens, {.fingerprint = std::nullopt, .verify_tokens = false}), "") << "verify_tokens=false reads it";

  const std::string magic = copy_of("magic.bin");
  flip_byte(magic, 0);
  EXPECT_EQ(open_error(magic), magic + ": not a loom token shard (bad magic)");

  const std::string foreign = open_error(good, {.fingerprint = kPrint + 1});
  EXPECT_TRUE(foreign.starts_with(good + ": written by another tokenizer (fingerprint "
                                         "1234abcd5678ef00, this tokenizer's is "
                                         "1234abcd5678ef01)")) << foreign;
  EXPECT_EQ(open_error(good, {.fingerprint = kPrint}), "");
  try {
    TokenShard::open(dir.file("absent.bin"));
    FAIL();
  } catch (const IoError& e) {
    EXPECT_TRUE(std::string(e.what()).starts_with(dir.file("absent.bin") + ": cannot open"));
  }
}

TEST(TokenShard, AnUncommittedWriterLeavesTheOldShard) {
  test::TempDir dir;
  const std::string path = dir.file("s.bin");
  write_shard(path, sample_tokens(100, 1000), 1000);
  {
    TokenShardWriter w(path, 1000, kPrint + 1);
    w.append(sample_tokens(50, 1000));
    EXPECT_TRUE(exists(path + ".tmp"));
  }   // e.g. an exception while tokenizing: no commit
  EXPECT_FALSE(exists(path + ".tmp"));
  EXPECT_EQ(TokenShard::open(path, {.fingerprint = kPrint}).size(), 100u);

  TokenShardWriter w(path, 1000, kPrint);
  const std::vector<uint32_t> bad = {1, 2, 1000};
  try {
    w.append(bad);
    FAIL();
  } catch (const Error& e) {
    EXPECT_TRUE(std::string(e.what()).starts_with(path + ": token 2 is id 1000, outside"));
  }
}

}  // namespace
}  // namespace loom
