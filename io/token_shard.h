#pragma once
// Token shards: a tokenized corpus written once (by `loom tokenize`) and memory-mapped
// read-only by every rank.
//
// Note [Token shard format]
// Version 1, little-endian, a 64-byte header then the tokens:
//   offset  bytes  field
//        0      8  magic "LOOMTOKS"
//        8      4  format version (1)
//       12      4  token width in bytes: 2 (uint16, when vocab_size <= 65536) or 4 (uint32)
//       16      8  token count N
//       24      8  document count (documents are separated by the tokenizer's
//                  <|endoftext|>, which the writer's caller puts in the stream)
//       32      8  tokenizer fingerprint (BpeTokenizer / CharTokenizer::fingerprint())
//       40      4  vocabulary size: every token is below it
//       44      4  CRC-32 (zlib's) of the N * width token bytes
//       48     12  reserved, zero
//       60      4  CRC-32 of header bytes [0, 60)
//       64  N * w  the tokens
// The file is exactly 64 + N * width bytes. The writer goes through PATH.tmp, fsync,
// rename, fsync of the directory: a crash leaves the old shard or none, never half of one.
// The reader checks, before mapping: size >= 64, magic, header CRC, version, width, exact
// file size, the fingerprint it is given, and (unless told not to) the token CRC; each
// failure is a DataError (IoError for a file it cannot open) naming the file and the field.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>

namespace loom {

class AtomicFile;

struct TokenShardInfo {
  uint32_t version = 0;
  uint32_t token_width = 0;     // 2 or 4 bytes
  uint64_t token_count = 0;
  uint64_t document_count = 0;
  uint64_t fingerprint = 0;
  uint32_t vocab_size = 0;
  uint32_t tokens_crc = 0;
};

inline constexpr uint32_t kTokenShardVersion = 1;
inline constexpr size_t kTokenShardHeaderBytes = 64;

// The width a vocabulary of this size needs: 2 up to 65536 tokens, else 4.
inline uint32_t token_width_for(uint64_t vocab_size) { return vocab_size <= 65536 ? 2 : 4; }

class TokenShardWriter {
 public:
  TokenShardWriter(std::string path, uint32_t vocab_size, uint64_t fingerprint);
  ~TokenShardWriter();   // without commit(): PATH.tmp is removed, PATH is untouched
  TokenShardWriter(const TokenShardWriter&) = delete;
  TokenShardWriter& operator=(const TokenShardWriter&) = delete;

  // Appends tokens; an id >= vocab_size is a loom::Error naming its index in the shard.
  void append(std::span<const uint32_t> ids);
  void add_documents(uint64_t count) { info_.document_count += count; }
  uint64_t token_count() const { return info_.token_count; }
  // Writes the header, then fsync, rename, fsync directory.
  void commit();

 private:
  std::string path_;
  std::unique_ptr<AtomicFile> file_;
  TokenShardInfo info_;
  std::string buffer_;   // tokens at their width, not yet handed to file_
};

struct TokenShardCheck {
  std::optional<uint64_t> fingerprint;   // refuse a shard of another tokenizer
  bool verify_tokens = true;             // read every token once to check the CRC
};

// The header alone, checked (magic, CRC, version, width, file size); for staleness tests.
TokenShardInfo read_token_shard_info(const std::string& path);

class TokenShard {
 public:
  static TokenShard open(const std::string& path, const TokenShardCheck& check = {});
  TokenShard(TokenShard&& other) noexcept;
  TokenShard& operator=(TokenShard&& other) noexcept;
  ~TokenShard();

  const TokenShardInfo& info() const { return info_; }
  const std::string& path() const { return path_; }
  uint64_t size() const { return info_.token_count; }
  uint32_t operator[](uint64_t i) const {
    return info_.token_width == 2 ? static_cast<const uint16_t*>(tokens_)[i]
                                  : static_cast<const uint32_t*>(tokens_)[i];
  }
  // The tokens at their stored width (the other one is empty).
  std::span<const uint16_t> tokens_u16() const;
  std::span<const uint32_t> tokens_u32() const;
  // out[k] = (*this)[begin + k] for k < out.size(); begin + out.size() <= size().
  void copy(uint64_t begin, std::span<uint32_t> out) const;

 private:
  TokenShard() = default;
  std::string path_;
  TokenShardInfo info_;
  void* map_ = nullptr;            // the whole file, PROT_READ, MAP_SHARED
  size_t map_bytes_ = 0;
  const void* tokens_ = nullptr;   // map_ + 64
};

}  // namespace loom
