#pragma once
// TextSource: sequential reads of one file's uncompressed bytes, for plain text, gzip
// (".gz") and xz (".xz") files, chosen by the file name. zlib.h and lzma.h stay in
// text_source.cpp.
//
// Offsets are in uncompressed bytes. Compressed streams cannot jump: skip_to() decodes and
// discards, so a rank that starts in the middle of a compressed file pays for decoding
// what lies before its shard. Corpora meant for many ranks are best split into many files.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace loom {

enum class Compression : uint8_t { kNone, kGzip, kXz };

// From the file name: ".gz" gzip, ".xz" xz, anything else plain.
Compression compression_of(const std::string& path);

class TextSource {
 public:
  virtual ~TextSource() = default;
  // Reads up to `capacity` bytes into `out`; returns how many (0 only at the end).
  // Throws IoError naming the file and the byte offset on a read or decode failure.
  virtual size_t read(char* out, size_t capacity) = 0;
  // Moves to uncompressed `offset` (forward or backward; backward reopens a compressed file).
  virtual void skip_to(uint64_t offset) = 0;
  // Uncompressed bytes before the next read.
  virtual uint64_t position() const = 0;
  const std::string& path() const { return path_; }

 protected:
  explicit TextSource(std::string path) : path_(std::move(path)) {}
  std::string path_;
};

// Opens `path` (IoError naming it when missing or unreadable).
std::unique_ptr<TextSource> open_text_source(const std::string& path);

// Uncompressed size: stat() for plain files; compressed files are decoded to count.
uint64_t uncompressed_size(const std::string& path);

}  // namespace loom
