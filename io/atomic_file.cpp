#include "io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace loom {
namespace {

[[noreturn]] void throw_io(const std::string& what, const std::string& path, int err) {
  throw IoError(path + ": " + what + ": " + std::strerror(err));
}

void write_all(int fd, const char* data, size_t bytes, const std::string& path) {
  while (bytes > 0) {
    ssize_t n = ::write(fd, data, bytes);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_io("write failed", path, errno);
    }
    data += n;
    bytes -= static_cast<size_t>(n);
  }
}

}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmp") {
  fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd_ < 0) throw_io("cannot create", tmp_, errno);
}

AtomicFile::~AtomicFile() {
  if (fd_ >= 0) {
    ::close(fd_);
    ::unlink(tmp_.c_str());
  }
}

void AtomicFile::flush_buffer() {
  write_all(fd_, buffer_.data(), buffer_.size(), tmp_);
  buffer_.clear();
}

void AtomicFile::write(const void* data, size_t bytes) {
  LOOM_ASSERT(fd_ >= 0, "AtomicFile written after commit");
  size_ += bytes;
  if (buffer_.size() + bytes > kBufferBytes) flush_buffer();
  if (bytes >= kBufferBytes) {
    write_all(fd_, static_cast<const char*>(data), bytes, tmp_);
    return;
  }
  buffer_.append(static_cast<const char*>(data), bytes);
}

void AtomicFile::write_at(uint64_t offset, const void* data, size_t bytes) {
  LOOM_ASSERT(fd_ >= 0 && offset + bytes <= size_, "AtomicFile::write_at past the end");
  flush_buffer();
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    ssize_t n = ::pwrite(fd_, p, bytes, static_cast<off_t>(offset));
    if (n < 0) {
      if (errno == EINTR) continue;
      throw_io("write failed", tmp_, errno);
    }
    p += n;
    offset += static_cast<uint64_t>(n);
    bytes -= static_cast<size_t>(n);
  }
}

void AtomicFile::commit() {
  LOOM_ASSERT(fd_ >= 0, "AtomicFile committed twice");
  flush_buffer();
  if (::fsync(fd_) != 0) throw_io("fsync failed", tmp_, errno);
  int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) {
    int err = errno;
    ::unlink(tmp_.c_str());
    throw_io("close failed", tmp_, err);
  }
  if (std::rename(tmp_.c_str(), path_.c_str()) != 0) {
    int err = errno;
    ::unlink(tmp_.c_str());
    throw_io("cannot rename " + tmp_ + " to it", path_, err);
  }
  std::string dir = std::filesystem::path(path_).parent_path().string();
  if (dir.empty()) dir = ".";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) throw_io("cannot open directory for fsync", dir, errno);
  int rc = ::fsync(dfd);
  int err = errno;
  ::close(dfd);
  if (rc != 0) throw_io("fsync of the directory failed", dir, err);
}

void write_file_atomically(const std::string& path, std::string_view text) {
  AtomicFile f(path);
  f.write(text);
  f.commit();
}

}  // namespace loom
