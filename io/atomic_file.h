#pragma once
// A file written crash-safely: bytes go to PATH.tmp; commit() flushes and fsyncs it,
// renames it to PATH and fsyncs the directory, so PATH is always either absent, the old
// file or the complete new one. An AtomicFile destroyed before commit() removes PATH.tmp.
// Errors are loom::IoError naming the path and the system's reason.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace loom {

class AtomicFile {
 public:
  explicit AtomicFile(std::string path);
  ~AtomicFile();
  AtomicFile(const AtomicFile&) = delete;
  AtomicFile& operator=(const AtomicFile&) = delete;

  void write(const void* data, size_t bytes);
  void write(std::string_view text) { write(text.data(), text.size()); }
  // Overwrites bytes already written at `offset` (a header filled in at the end).
  void write_at(uint64_t offset, const void* data, size_t bytes);
  void commit();

  const std::string& path() const { return path_; }
  uint64_t bytes_written() const { return size_; }

 private:
  void flush_buffer();
  std::string path_;
  std::string tmp_;
  int fd_ = -1;
  uint64_t size_ = 0;
  std::string buffer_;   // up to kBufferBytes not yet written to fd_
  static constexpr size_t kBufferBytes = size_t{1} << 20;
};

// Writes `text` to `path` through an AtomicFile.
void write_file_atomically(const std::string& path, std::string_view text);

}  // namespace loom
