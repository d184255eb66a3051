// Word vector files (export.h).
#include "io/export.h"

#include <fcntl.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>

#include "core/error.h"

namespace loom {

static_assert(std::endian::native == std::endian::little,
              "word2vec binary files hold little-endian float32; add a byte swap for this target");

const char* vector_format_name(VectorFormat format) {
  switch (format) {
    case VectorFormat::kGloveText: return "glove";
    case VectorFormat::kWord2VecText: return "word2vec";
    case VectorFormat::kWord2VecBinary: return "word2vec-bin";
  }
  return "?";
}

VectorFormat parse_vector_format(std::string_view name) {
  if (name == "glove") return VectorFormat::kGloveText;
  if (name == "word2vec") return VectorFormat::kWord2VecText;
  if (name == "word2vec-bin") return VectorFormat::kWord2VecBinary;
  if (name == "word2vec-full")
    throw ConfigError("the format word2vec-full holds a word2vec checkpoint's input and output weights (for gensim); "
                      "vectors alone are glove|word2vec|word2vec-bin");
  throw ConfigError("unknown vector format '" + std::string(name) + "' (glove|word2vec|word2vec-bin)");
}

namespace {

std::string errno_text() { return std::strerror(errno); }

void check_word(const std::string& word, size_t index) {
  bool ok = !word.empty();
  for (char ch : word) ok = ok && ch != ' ' && ch != '\t' && ch != '\n' && ch != '\r';
  LOOM_CHECK(ok, DataError, "write_vectors: word " + std::to_string(index) + " ('" + word +
                                "') is empty or contains whitespace; vector files cannot hold it");
}

// One record's line or bytes appended to `out` (without the header).
void append_record(std::string& out, VectorFormat format, const std::string& word,
                   const float* v, int64_t dim) {
  out += word;
  if (format == VectorFormat::kWord2VecBinary) {
    out += ' ';
    out.append(reinterpret_cast<const char*>(v), static_cast<size_t>(dim) * sizeof(float));
    out += '\n';
    return;
  }
  char buf[32];
  for (int64_t k = 0; k < dim; ++k) {
    buf[0] = ' ';
    auto res = std::to_chars(buf + 1, buf + sizeof(buf), v[k]);   // shortest round-trip form
    out.append(buf, res.ptr);
  }
  out += '\n';
}

void write_all(int fd, const std::string& data, const std::string& tmp) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      const std::string why = errno_text();
      ::close(fd);
      ::unlink(tmp.c_str());
      throw IoError(tmp + ": write failed: " + why);
    }
    done += static_cast<size_t>(n);
  }
}

}  // namespace

void write_vectors(const std::string& path, VectorFormat format, const std::vector<std::string>& words,
                   const float* vectors, int64_t dim) {
  LOOM_ASSERT(dim > 0, "write_vectors: dim must be positive");
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(tmp + ": cannot create: " + errno_text());
  std::string chunk;   // written every ~8 MiB
  if (format != VectorFormat::kGloveText)
    chunk = std::to_string(words.size()) + " " + std::to_string(dim) + "\n";
  for (size_t i = 0; i < words.size(); ++i) {
    check_word(words[i], i);
    append_record(chunk, format, words[i], vectors + static_cast<int64_t>(i) * dim, dim);
    if (chunk.size() > (size_t{8} << 20)) {
      write_all(fd, chunk, tmp);
      chunk.clear();
    }
  }
  write_all(fd, chunk, tmp);
  if (::fsync(fd) != 0 || ::close(fd) != 0) {
    ::unlink(tmp.c_str());
    throw IoError(tmp + ": fsync/close failed: " + errno_text());
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw IoError(path + ": rename from " + tmp + " failed: " + errno_text());
}

}  // namespace loom
