// Reading word vector files in any of export.h's formats, with format detection.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <string_view>

#include "core/error.h"
#include "io/export.h"

namespace loom {

namespace {

std::string read_whole(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw IoError(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  std::string data;
  if (::fstat(fd, &st) == 0) data.resize(static_cast<size_t>(st.st_size));
  size_t done = 0;
  while (done < data.size()) {
    const ssize_t n = ::read(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const std::string why = n < 0 ? std::strerror(errno) : "file shrank while reading";
      ::close(fd);
      throw IoError(path + ": read failed: " + why);
    }
    done += static_cast<size_t>(n);
  }
  ::close(fd);
  return data;
}

// Splits on spaces and tabs (a trailing '\r' is dropped).
std::vector<std::string_view> split_fields(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t j = i;
    while (j < line.size() && line[j] != ' ' && line[j] != '\t') ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

bool parse_int(std::string_view s, int64_t* out) {
  auto res = std::from_chars(s.data(), s.data() + s.size(), *out);
  return res.ec == std::errc() && res.ptr == s.data() + s.size() && *out >= 0;
}

bool parse_float(std::string_view s, float* out) {
  auto res = std::from_chars(s.data(), s.data() + s.size(), *out);
  return res.ec == std::errc() && res.ptr == s.data() + s.size();
}

// True if `fields` is a word followed by exactly `dim` numbers.
bool is_text_record(const std::vector<std::string_view>& fields, int64_t dim) {
  if (static_cast<int64_t>(fields.size()) != dim + 1) return false;
  float v;
  for (size_t k = 1; k < fields.size(); ++k)
    if (!parse_float(fields[k], &v)) return false;
  return true;
}

// Text records from byte `pos` on; line numbers start at `line_no`.
void read_text_records(const std::string& path, const std::string& data, size_t pos,
                       int64_t line_no, EmbeddingTable* t) {
  while (pos < data.size()) {
    size_t end = data.find('\n', pos);
    if (end == std::string::npos) end = data.size();
    std::vector<std::string_view> f = split_fields(std::string_view(data).substr(pos, end - pos));
    pos = end + 1;
    if (f.empty()) { ++line_no; continue; }
    if (t->dim == 0) t->dim = static_cast<int64_t>(f.size()) - 1;
    const std::string where = path + ":" + std::to_string(line_no);
    LOOM_CHECK(t->dim > 0 && static_cast<int64_t>(f.size()) == t->dim + 1, DataError,
               where + ": expected a word and " + std::to_string(t->dim) + " numbers, found " +
                   std::to_string(f.size()) + " fields");
    t->words.emplace_back(f[0]);
    for (size_t k = 1; k < f.size(); ++k) {
      float v = 0;
      LOOM_CHECK(parse_float(f[k], &v), DataError,
                 where + ": '" + std::string(f[k]) + "' is not a number (field " + std::to_string(k + 1) + ")");
      t->vectors.push_back(v);
    }
    ++line_no;
  }
}

void read_binary_records(const std::string& path, const std::string& data, size_t pos,
                         int64_t count, EmbeddingTable* t) {
  const size_t row_bytes = static_cast<size_t>(t->dim) * sizeof(float);
  t->vectors.resize(static_cast<size_t>(count * t->dim));
  for (int64_t i = 0; i < count; ++i) {
    while (pos < data.size() && (data[pos] == '\n' || data[pos] == '\r')) ++pos;
    const size_t space = data.find(' ', pos);
    LOOM_CHECK(space != std::string::npos && space > pos, DataError,
               path + ":byte " + std::to_string(pos) + ": record " + std::to_string(i) + " of " +
                   std::to_string(count) + ": no 'word ' (file truncated?)");
    LOOM_CHECK(space + 1 + row_bytes <= data.size(), DataError,
               path + ":byte " + std::to_string(space + 1) + ": record " + std::to_string(i) +
                   " ('" + data.substr(pos, space - pos) + "') is truncated");
    t->words.emplace_back(data, pos, space - pos);
    std::memcpy(t->vectors.data() + i * t->dim, data.data() + space + 1, row_bytes);
    pos = space + 1 + row_bytes;
  }
}

}  // namespace

EmbeddingTable read_vectors(const std::string& path, VectorFormat* detected) {
  const std::string data = read_whole(path);
  EmbeddingTable t;
  size_t first_end = data.find('\n');
  LOOM_CHECK(first_end != std::string::npos, DataError, path + ":1: not a vector file (no complete line)");
  std::vector<std::string_view> head = split_fields(std::string_view(data).substr(0, first_end));
  int64_t count = 0, dim = 0;
  const bool header = head.size() == 2 && parse_int(head[0], &count) && parse_int(head[1], &dim);
  if (!header) {
    if (detected != nullptr) *detected = VectorFormat::kGloveText;
    read_text_records(path, data, 0, 1, &t);
    return t;
  }
  LOOM_CHECK(dim > 0, DataError, path + ":1: word2vec header gives dimension 0");
  t.dim = dim;
  const size_t second_end = std::min(data.find('\n', first_end + 1), data.size());
  const bool text = count == 0 || is_text_record(split_fields(std::string_view(data).substr(
                                                      first_end + 1, second_end - first_end - 1)), dim);
  if (detected != nullptr) *detected = text ? VectorFormat::kWord2VecText : VectorFormat::kWord2VecBinary;
  if (text) {
    read_text_records(path, data, first_end + 1, 2, &t);
  } else {
    read_binary_records(path, data, first_end + 1, count, &t);
  }
  LOOM_CHECK(t.size() == count, DataError,
             path + ": the header announces " + std::to_string(count) + " words, the file holds " +
                 std::to_string(t.size()));
  return t;
}

}  // namespace loom
