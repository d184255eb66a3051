#include "io/token_shard.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/checksum.h"

namespace loom {
namespace {

static_assert(std::endian::native == std::endian::little, "token shards are little-endian");
constexpr char kMagic[8] = {'L', 'O', 'O', 'M', 'T', 'O', 'K', 'S'};
constexpr size_t kHeaderCrcAt = 60;

template <typename T>
void put(unsigned char* h, size_t at, T v) { std::memcpy(h + at, &v, sizeof(v)); }
template <typename T>
T get(const unsigned char* h, size_t at) {
  T v;
  std::memcpy(&v, h + at, sizeof(v));
  return v;
}

void encode_header(const TokenShardInfo& info, unsigned char h[kTokenShardHeaderBytes]) {
  std::memset(h, 0, kTokenShardHeaderBytes);
  std::memcpy(h, kMagic, 8);
  put<uint32_t>(h, 8, info.version);
  put<uint32_t>(h, 12, info.token_width);
  put<uint64_t>(h, 16, info.token_count);
  put<uint64_t>(h, 24, info.document_count);
  put<uint64_t>(h, 32, info.fingerprint);
  put<uint32_t>(h, 40, info.vocab_size);
  put<uint32_t>(h, 44, info.tokens_crc);
  put<uint32_t>(h, kHeaderCrcAt, crc32_update(0, h, kHeaderCrcAt));
}

std::string hex64(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

// Reads and checks the header of an open shard; `file_bytes` is the file's size.
TokenShardInfo decode_header(int fd, const std::string& path, uint64_t file_bytes) {
  auto bad = [&](const std::string& what) { return DataError(path + ": " + what); };
  if (file_bytes < kTokenShardHeaderBytes)
    throw bad("truncated: " + std::to_string(file_bytes) + " bytes, less than the " +
              std::to_string(kTokenShardHeaderBytes) + "-byte token shard header");
  unsigned char h[kTokenShardHeaderBytes];
  if (::pread(fd, h, sizeof(h), 0) != static_cast<ssize_t>(sizeof(h)))
    throw IoError(path + ": cannot read the header: " + std::strerror(errno));
  if (std::memcmp(h, kMagic, 8) != 0) throw bad("not a loom token shard (bad magic)");
  if (get<uint32_t>(h, kHeaderCrcAt) != crc32_update(0, h, kHeaderCrcAt))
    throw bad("header checksum mismatch: the header is damaged; tokenize again");
  TokenShardInfo info;
  info.version = get<uint32_t>(h, 8);
  info.token_width = get<uint32_t>(h, 12);
  info.token_count = get<uint64_t>(h, 16);
  info.document_count = get<uint64_t>(h, 24);
  info.fingerprint = get<uint64_t>(h, 32);
  info.vocab_size = get<uint32_t>(h, 40);
  info.tokens_crc = get<uint32_t>(h, 44);
  if (info.version != kTokenShardVersion)
    throw bad("format version " + std::to_string(info.version) + "; this loom reads version " +
              std::to_string(kTokenShardVersion));
  if (info.token_width != token_width_for(info.vocab_size))
    throw bad("token width " + std::to_string(info.token_width) + " does not fit vocab size " +
              std::to_string(info.vocab_size));
  const uint64_t want = kTokenShardHeaderBytes + info.token_count * info.token_width;
  if (info.token_count > (uint64_t{1} << 60) || file_bytes != want)
    throw bad("size " + std::to_string(file_bytes) + " bytes, but the header promises " +
              std::to_string(info.token_count) + " tokens (" + std::to_string(want) +
              " bytes): " + (file_bytes < want ? "truncated" : "trailing bytes"));
  return info;
}

struct Fd {
  int fd;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

uint64_t open_shard(const std::string& path, Fd& fd) {
  fd.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd.fd < 0) throw IoError(path + ": cannot open the token shard: " + std::strerror(errno));
  struct stat st{};
  if (::fstat(fd.fd, &st) != 0) throw IoError(path + ": cannot stat: " + std::strerror(errno));
  return static_cast<uint64_t>(st.st_size);
}

}  // namespace

// ---- writer -------------------------------------------------------------------------

TokenShardWriter::TokenShardWriter(std::string path, uint32_t vocab_size, uint64_t fingerprint)
    : path_(std::move(path)), file_(std::make_unique<AtomicFile>(path_)) {
  LOOM_CHECK(vocab_size > 0, Error, path_ + ": token shard for an empty vocabulary");
  info_.version = kTokenShardVersion;
  info_.token_width = token_width_for(vocab_size);
  info_.vocab_size = vocab_size;
  info_.fingerprint = fingerprint;
  const unsigned char zero[kTokenShardHeaderBytes] = {};
  file_->write(zero, sizeof(zero));   // the real header is written by commit()
}

TokenShardWriter::~TokenShardWriter() = default;

void TokenShardWriter::append(std::span<const uint32_t> ids) {
  LOOM_CHECK(file_ != nullptr, Error, path_ + ": token shard appended to after commit");
  const size_t w = info_.token_width;
  const size_t at = buffer_.size();
  buffer_.resize(at + ids.size() * w);
  char* out = buffer_.data() + at;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] >= info_.vocab_size)
      throw Error(path_ + ": token " + std::to_string(info_.token_count + i) + " is id " +
                  std::to_string(ids[i]) + ", outside the vocabulary (" +
                  std::to_string(info_.vocab_size) + ")");
    if (w == 2) {
      const auto v = static_cast<uint16_t>(ids[i]);
      std::memcpy(out + 2 * i, &v, 2);
    } else {
      std::memcpy(out + 4 * i, &ids[i], 4);
    }
  }
  info_.token_count += ids.size();
  if (buffer_.size() >= (size_t{1} << 20)) {
    info_.tokens_crc = crc32_update(info_.tokens_crc, buffer_.data(), buffer_.size());
    file_->write(buffer_);
    buffer_.clear();
  }
}

void TokenShardWriter::commit() {
  LOOM_CHECK(file_ != nullptr, Error, path_ + ": token shard committed twice");
  info_.tokens_crc = crc32_update(info_.tokens_crc, buffer_.data(), buffer_.size());
  file_->write(buffer_);
  buffer_.clear();
  unsigned char h[kTokenShardHeaderBytes];
  encode_header(info_, h);
  file_->write_at(0, h, sizeof(h));
  file_->commit();
  file_.reset();
}

// ---- reader -------------------------------------------------------------------------

TokenShardInfo read_token_shard_info(const std::string& path) {
  Fd fd{-1};
  const uint64_t bytes = open_shard(path, fd);
  return decode_header(fd.fd, path, bytes);
}

TokenShard TokenShard::open(const std::string& path, const TokenShardCheck& check) {
  Fd fd{-1};
  const uint64_t bytes = open_shard(path, fd);
  TokenShard shard;
  shard.path_ = path;
  shard.info_ = decode_header(fd.fd, path, bytes);
  if (check.fingerprint && *check.fingerprint != shard.info_.fingerprint)
    throw DataError(path + ": written by another tokenizer (fingerprint " +
                    hex64(shard.info_.fingerprint) + ", this tokenizer's is " +
                    hex64(*check.fingerprint) + "); tokenize the corpus again");
  void* map = ::mmap(nullptr, bytes, PROT_READ, MAP_SHARED, fd.fd, 0);
  if (map == MAP_FAILED) throw IoError(path + ": mmap failed: " + std::strerror(errno));
  shard.map_ = map;
  shard.map_bytes_ = bytes;
  shard.tokens_ = static_cast<const unsigned char*>(map) + kTokenShardHeaderBytes;
  if (check.verify_tokens) {
    const uint32_t crc = crc32_of(shard.tokens_, bytes - kTokenShardHeaderBytes);
    if (crc != shard.info_.tokens_crc)
      throw DataError(path + ": token checksum mismatch (the tokens are damaged); tokenize "
                      "the corpus again");
  }
  return shard;
}

TokenShard::TokenShard(TokenShard&& other) noexcept { *this = std::move(other); }

TokenShard& TokenShard::operator=(TokenShard&& other) noexcept {
  if (this != &other) {
    if (map_) ::munmap(map_, map_bytes_);
    path_ = std::move(other.path_);
    info_ = other.info_;
    map_ = std::exchange(other.map_, nullptr);
    map_bytes_ = std::exchange(other.map_bytes_, 0);
    tokens_ = std::exchange(other.tokens_, nullptr);
  }
  return *this;
}

TokenShard::~TokenShard() {
  if (map_) ::munmap(map_, map_bytes_);
}

std::span<const uint16_t> TokenShard::tokens_u16() const {
  if (info_.token_width != 2) return {};
  return {static_cast<const uint16_t*>(tokens_), info_.token_count};
}

std::span<const uint32_t> TokenShard::tokens_u32() const {
  if (info_.token_width != 4) return {};
  return {static_cast<const uint32_t*>(tokens_), info_.token_count};
}

void TokenShard::copy(uint64_t begin, std::span<uint32_t> out) const {
  LOOM_ASSERT(begin + out.size() <= info_.token_count, "TokenShard::copy past the end");
  if (info_.token_width == 4) {
    std::memcpy(out.data(), static_cast<const uint32_t*>(tokens_) + begin, out.size() * 4);
    return;
  }
  const uint16_t* src = static_cast<const uint16_t*>(tokens_) + begin;
  for (size_t k = 0; k < out.size(); ++k) out[k] = src[k];
}

}  // namespace loom
