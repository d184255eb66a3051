#include "io/text_source.h"

#include <fcntl.h>
#include <lzma.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "core/error.h"

namespace loom {
namespace {

bool ends_with(const std::string& s, const char* suffix) {
  size_t n = std::strlen(suffix);
  return s.size() >= n && s.compare(s.size() - n, n, suffix) == 0;
}

[[noreturn]] void throw_open_error(const std::string& path) {
  throw IoError("cannot open corpus file " + path + ": " + std::strerror(errno) +
                " (check the path in corpus.paths and its permissions)");
}

class PlainSource final : public TextSource {
 public:
  explicit PlainSource(const std::string& path) : TextSource(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw_open_error(path);
    ::posix_fadvise(fd_, 0, 0, POSIX_FADV_SEQUENTIAL);
  }
  ~PlainSource() override { ::close(fd_); }
  size_t read(char* out, size_t capacity) override {
    for (;;) {
      ssize_t got = ::pread(fd_, out, capacity, static_cast<off_t>(pos_));
      if (got >= 0) { pos_ += static_cast<uint64_t>(got); return static_cast<size_t>(got); }
      if (errno != EINTR)
        throw IoError("read failed in " + path_ + " at byte " + std::to_string(pos_) + ": " +
                      std::strerror(errno));
    }
  }
  void skip_to(uint64_t offset) override { pos_ = offset; }
  uint64_t position() const override { return pos_; }

 private:
  int fd_ = -1;
  uint64_t pos_ = 0;
};

// Shared by the compressed sources: forward skipping by decoding into a scratch buffer.
class DecodingSource : public TextSource {
 public:
  using TextSource::TextSource;
  void skip_to(uint64_t offset) override {
    if (offset < pos_) reopen();
    std::vector<char> scratch(1 << 16);
    while (pos_ < offset) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(scratch.size(), offset - pos_));
      if (read(scratch.data(), want) == 0) break;
    }
  }
  uint64_t position() const override { return pos_; }

 protected:
  virtual void reopen() = 0;
  uint64_t pos_ = 0;
};

class GzipSource final : public DecodingSource {
 public:
  explicit GzipSource(const std::string& path) : DecodingSource(path) { reopen(); }
  ~GzipSource() override { if (gz_) gzclose(gz_); }
  size_t read(char* out, size_t capacity) override {
    size_t want = std::min<size_t>(capacity, 1u << 30);
    int got = gzread(gz_, out, static_cast<unsigned>(want));
    if (got < 0) {
      int code = 0;
      const char* msg = gzerror(gz_, &code);
      throw IoError("gzip decode failed in " + path_ + " at uncompressed byte " +
                    std::to_string(pos_) + ": " + msg + " (the file is damaged or truncated)");
    }
    // Note [A gzip stream ends with its trailer]: gzread returns what it could decode
    // when the file ends, also in the middle of a stream; only gzerror tells Z_OK (the
    // last stream was complete, its CRC-32 and length checked) from Z_BUF_ERROR (the file
    // ended inside a stream). Without this check half a .gz file reads as a shorter
    // corpus, without a word. xz's decoder reports the same case as LZMA_BUF_ERROR.
    if (static_cast<size_t>(got) < want) {
      int code = Z_OK;
      gzerror(gz_, &code);
      if (code == Z_BUF_ERROR)
        throw IoError("gzip file " + path_ + " ends inside a compressed stream after " +
                      std::to_string(pos_ + static_cast<uint64_t>(got)) +
                      " uncompressed bytes (the file is truncated: copy or download it again)");
    }
    pos_ += static_cast<uint64_t>(got);
    return static_cast<size_t>(got);
  }

 protected:
  void reopen() override {
    if (gz_) gzclose(gz_);
    gz_ = gzopen(path_.c_str(), "rb");
    if (!gz_) throw_open_error(path_);
    gzbuffer(gz_, 1 << 18);
    pos_ = 0;
  }

 private:
  gzFile gz_ = nullptr;
};

class XzSource final : public DecodingSource {
 public:
  explicit XzSource(const std::string& path) : DecodingSource(path), in_(1 << 18) { reopen(); }
  ~XzSource() override { close_all(); }
  size_t read(char* out, size_t capacity) override {
    strm_.next_out = reinterpret_cast<uint8_t*>(out);
    strm_.avail_out = capacity;
    while (strm_.avail_out == capacity && !done_) {
      if (strm_.avail_in == 0 && !eof_) refill();
      lzma_ret ret = lzma_code(&strm_, eof_ ? LZMA_FINISH : LZMA_RUN);
      if (ret == LZMA_STREAM_END) { done_ = true; break; }
      if (ret != LZMA_OK)
        throw IoError("xz decode failed in " + path_ + " at uncompressed byte " +
                      std::to_string(pos_) + " (lzma error " + std::to_string(ret) +
                      "; the file is damaged or truncated)");
    }
    size_t got = capacity - strm_.avail_out;
    pos_ += got;
    return got;
  }

 protected:
  void reopen() override {
    close_all();
    fd_ = ::open(path_.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw_open_error(path_);
    strm_ = LZMA_STREAM_INIT;
    if (lzma_stream_decoder(&strm_, UINT64_MAX, LZMA_CONCATENATED) != LZMA_OK)
      throw IoError("cannot start the xz decoder for " + path_);
    pos_ = 0;
    eof_ = done_ = false;
  }

 private:
  void refill() {
    ssize_t got = ::read(fd_, in_.data(), in_.size());
    if (got < 0) throw IoError("read failed in " + path_ + ": " + std::strerror(errno));
    if (got == 0) eof_ = true;
    strm_.next_in = in_.data();
    strm_.avail_in = static_cast<size_t>(got);
  }
  void close_all() {
    if (fd_ >= 0) { lzma_end(&strm_); ::close(fd_); fd_ = -1; }
  }
  int fd_ = -1;
  lzma_stream strm_ = LZMA_STREAM_INIT;
  std::vector<uint8_t> in_;
  bool eof_ = false;
  bool done_ = false;
};

}  // namespace

Compression compression_of(const std::string& path) {
  if (ends_with(path, ".gz")) return Compression::kGzip;
  if (ends_with(path, ".xz")) return Compression::kXz;
  return Compression::kNone;
}

std::unique_ptr<TextSource> open_text_source(const std::string& path) {
  switch (compression_of(path)) {
    case Compression::kGzip: return std::make_unique<GzipSource>(path);
    case Compression::kXz: return std::make_unique<XzSource>(path);
    case Compression::kNone: break;
  }
  return std::make_unique<PlainSource>(path);
}

uint64_t uncompressed_size(const std::string& path) {
  if (compression_of(path) == Compression::kNone) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw_open_error(path);
    if (!S_ISREG(st.st_mode))
      throw IoError("corpus path " + path + " is not a regular file");
    if (::access(path.c_str(), R_OK) != 0) throw_open_error(path);
    return static_cast<uint64_t>(st.st_size);
  }
  auto source = open_text_source(path);
  std::vector<char> scratch(1 << 20);
  uint64_t total = 0;
  while (size_t got = source->read(scratch.data(), scratch.size())) total += got;
  return total;
}

}  // namespace loom
