#pragma once
// The safetensors format (Hugging Face), as `loom export --format safetensors` writes it and
// as tests read it back:
//
//   u64 little-endian N | N bytes of JSON header | data
//
// The header is one JSON object: {"<name>": {"dtype": "F32", "shape": [d0, ...],
// "data_offsets": [begin, end]}, ..., "__metadata__": {"key": "value", ...}} padded with
// spaces so that N is a multiple of 8 (the data then starts 8-aligned). Offsets are relative
// to the start of the data; the tensors' byte ranges tile the data exactly, in the order the
// header lists them (loom writes them in the caller's order). Values are little-endian and
// row-major. A scalar has shape []; a tensor with a zero dimension has begin == end.
//
// write_safetensors goes through AtomicFile (PATH.tmp, fsync, rename, fsync the directory).
// SafetensorsReader checks the whole header before handing out a byte: JSON object, known
// dtypes, shapes whose element count × dtype size equals the byte range, ranges inside the
// file, contiguous and not overlapping, and no bytes after the last one. Every error is a
// DataError (IoError for I/O) naming the file and, where one is at fault, the tensor.
#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace loom {

// The format's dtype codes. loom writes F32 (parameters) and may write I32 / BF16; the
// reader knows every code the format defines so it can check any file.
enum class SafetensorsDtype {
  kBool, kU8, kI8, kF8E5M2, kF8E4M3, kI16, kU16, kF16, kBF16, kI32, kU32, kF32, kF64, kI64, kU64
};

const char* safetensors_dtype_name(SafetensorsDtype dtype);   // "F32", "BF16", ...
size_t safetensors_dtype_bytes(SafetensorsDtype dtype);       // 4, 2, ...
// The dtype for a code; false when the code is unknown.
bool parse_safetensors_dtype(std::string_view code, SafetensorsDtype* dtype);

// One tensor to write: a view of caller-owned little-endian bytes.
struct SafetensorsTensorView {
  std::string name;
  SafetensorsDtype dtype = SafetensorsDtype::kF32;
  std::vector<int64_t> shape;
  std::span<const std::byte> data;   // element count of `shape` × dtype bytes
};

// A float32 tensor view (the common case: a parameter).
SafetensorsTensorView safetensors_f32(std::string name, std::vector<int64_t> shape,
                                      std::span<const float> values);

using SafetensorsMetadata = std::map<std::string, std::string>;

// Writes `tensors` in the given order. Names must be unique, non-empty and not
// "__metadata__"; data sizes must match the shapes (DataError naming the tensor otherwise).
// IoError naming the path when the file cannot be written.
void write_safetensors(const std::string& path, std::span<const SafetensorsTensorView> tensors,
                       const SafetensorsMetadata& metadata = {});

// One tensor's header entry as read.
struct SafetensorsEntry {
  std::string name;
  SafetensorsDtype dtype = SafetensorsDtype::kF32;
  std::vector<int64_t> shape;
  uint64_t begin = 0;   // byte offsets relative to the data start
  uint64_t end = 0;

  int64_t numel() const;
  uint64_t bytes() const { return end - begin; }
};

// A checked safetensors file. The constructor reads and validates the header only; tensor
// data is read on request.
class SafetensorsReader {
 public:
  explicit SafetensorsReader(std::string path);

  const std::string& path() const { return path_; }
  const SafetensorsMetadata& metadata() const { return metadata_; }
  // Entries in the order of their data (= header order for a file loom wrote).
  const std::vector<SafetensorsEntry>& entries() const { return entries_; }
  bool contains(std::string_view name) const { return find(name) != nullptr; }
  const SafetensorsEntry* find(std::string_view name) const;
  // The entry; DataError naming the file and the tensor when absent.
  const SafetensorsEntry& entry(std::string_view name) const;

  // The tensor's raw bytes (little-endian).
  std::vector<std::byte> read_bytes(std::string_view name) const;
  // An F32 tensor's values; DataError naming the tensor when its dtype is another.
  std::vector<float> read_f32(std::string_view name) const;

 private:
  std::string path_;
  uint64_t data_start_ = 0;   // 8 + header length
  SafetensorsMetadata metadata_;
  std::vector<SafetensorsEntry> entries_;
};

}  // namespace loom
