#include "io/safetensors.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>
#include <unordered_set>

#include "core/error.h"
#include "io/atomic_file.h"

namespace loom {
namespace {

static_assert(std::endian::native == std::endian::little,
              "safetensors data is little-endian; loom writes host memory as is");

struct DtypeInfo {
  SafetensorsDtype dtype;
  const char* code;
  size_t bytes;
};

constexpr std::array<DtypeInfo, 15> kDtypes = {{
    {SafetensorsDtype::kBool, "BOOL", 1},     {SafetensorsDtype::kU8, "U8", 1},
    {SafetensorsDtype::kI8, "I8", 1},         {SafetensorsDtype::kF8E5M2, "F8_E5M2", 1},
    {SafetensorsDtype::kF8E4M3, "F8_E4M3", 1}, {SafetensorsDtype::kI16, "I16", 2},
    {SafetensorsDtype::kU16, "U16", 2},       {SafetensorsDtype::kF16, "F16", 2},
    {SafetensorsDtype::kBF16, "BF16", 2},     {SafetensorsDtype::kI32, "I32", 4},
    {SafetensorsDtype::kU32, "U32", 4},       {SafetensorsDtype::kF32, "F32", 4},
    {SafetensorsDtype::kF64, "F64", 8},       {SafetensorsDtype::kI64, "I64", 8},
    {SafetensorsDtype::kU64, "U64", 8},
}};

const DtypeInfo& info(SafetensorsDtype dtype) {
  for (const DtypeInfo& d : kDtypes)
    if (d.dtype == dtype) return d;
  LOOM_ASSERT(false, "unknown SafetensorsDtype");
  return kDtypes[0];
}

// The Rust reference refuses headers above 100 MB; so does loom (a damaged length field
// must not make the reader allocate gigabytes).
constexpr uint64_t kMaxHeaderBytes = uint64_t{100} << 20;
constexpr const char* kMetadataKey = "__metadata__";

// Element count of `shape` times `elem_bytes`; false on overflow or a negative dimension.
bool shape_bytes(const std::vector<int64_t>& shape, size_t elem_bytes, uint64_t* bytes) {
  uint64_t n = elem_bytes;
  for (int64_t d : shape) {
    if (d < 0) return false;
    if (__builtin_mul_overflow(n, static_cast<uint64_t>(d), &n)) return false;
  }
  *bytes = n;
  return true;
}

std::string shape_text(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

void put_u64_le(uint64_t v, unsigned char* out) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<unsigned char>(v >> (8 * i));
}

uint64_t get_u64_le(const unsigned char* in) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= uint64_t{in[i]} << (8 * i);
  return v;
}

}  // namespace

const char* safetensors_dtype_name(SafetensorsDtype dtype) { return info(dtype).code; }
size_t safetensors_dtype_bytes(SafetensorsDtype dtype) { return info(dtype).bytes; }

bool parse_safetensors_dtype(std::string_view code, SafetensorsDtype* dtype) {
  for (const DtypeInfo& d : kDtypes) {
    if (code == d.code) {
      *dtype = d.dtype;
      return true;
    }
  }
  return false;
}

SafetensorsTensorView safetensors_f32(std::string name, std::vector<int64_t> shape,
                                      std::span<const float> values) {
  return {std::move(name), SafetensorsDtype::kF32, std::move(shape), std::as_bytes(values)};
}

void write_safetensors(const std::string& path, std::span<const SafetensorsTensorView> tensors,
                       const SafetensorsMetadata& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  std::unordered_set<std::string> names;
  uint64_t offset = 0;
  for (const SafetensorsTensorView& t : tensors) {
    const std::string where = path + ": tensor \"" + t.name + "\"";
    if (t.name.empty() || t.name == kMetadataKey)
      throw DataError(where + ": not a valid tensor name in safetensors");
    if (!names.insert(t.name).second) throw DataError(where + ": written twice");
    uint64_t bytes = 0;
    if (!shape_bytes(t.shape, safetensors_dtype_bytes(t.dtype), &bytes))
      throw DataError(where + ": invalid shape " + shape_text(t.shape));
    if (bytes != t.data.size())
      throw DataError(where + ": shape " + shape_text(t.shape) + " of " +
                      safetensors_dtype_name(t.dtype) + " needs " + std::to_string(bytes) +
                      " bytes, given " + std::to_string(t.data.size()));
    header[t.name] = {{"dtype", safetensors_dtype_name(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + bytes}}};
    offset += bytes;
  }
  if (!metadata.empty()) header[kMetadataKey] = metadata;
  std::string text = header.dump();
  text.append((8 - text.size() % 8) % 8, ' ');

  AtomicFile file(path);
  unsigned char length[8];
  put_u64_le(text.size(), length);
  file.write(length, sizeof length);
  file.write(text);
  for (const SafetensorsTensorView& t : tensors) file.write(t.data.data(), t.data.size());
  file.commit();
}

int64_t SafetensorsEntry::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsReader::SafetensorsReader(std::string path) : path_(std::move(path)) {
  std::ifstream in(path_, std::ios::binary | std::ios::ate);
  if (!in) throw IoError(path_ + ": cannot open (" + std::strerror(errno) + ")");
  const uint64_t file_bytes = static_cast<uint64_t>(in.tellg());
  in.seekg(0);
  auto bad = [&](const std::string& what) {
    return DataError(path_ + ": not a valid safetensors file: " + what);
  };
  if (file_bytes < 8)
    throw bad("shorter (" + std::to_string(file_bytes) + " bytes) than the 8-byte header length");
  unsigned char length[8];
  in.read(reinterpret_cast<char*>(length), sizeof length);
  const uint64_t header_bytes = get_u64_le(length);
  if (header_bytes > kMaxHeaderBytes || header_bytes > file_bytes - 8)
    throw bad("header length " + std::to_string(header_bytes) + " does not fit a file of " +
              std::to_string(file_bytes) + " bytes");
  std::string text(header_bytes, '\0');
  if (!in.read(text.data(), static_cast<std::streamsize>(header_bytes)))
    throw IoError(path_ + ": read of the header failed");
  data_start_ = 8 + header_bytes;
  const uint64_t data_bytes = file_bytes - data_start_;

  nlohmann::ordered_json header;
  try {
    header = nlohmann::ordered_json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    throw bad(std::string("header is not JSON: ") + e.what());
  }
  if (!header.is_object()) throw bad("header is not a JSON object");

  for (const auto& [name, value] : header.items()) {
    if (name == kMetadataKey) {
      if (!value.is_object()) throw bad("\"__metadata__\" is not an object of strings");
      for (const auto& [key, v] : value.items()) {
        if (!v.is_string()) throw bad("\"__metadata__\" value of \"" + key + "\" is not a string");
        metadata_[key] = v.get<std::string>();
      }
      continue;
    }
    auto bad_tensor = [&](const std::string& what) {
      return DataError(path_ + ": tensor \"" + name + "\": " + what);
    };
    if (!value.is_object()) throw bad_tensor("header entry is not an object");
    SafetensorsEntry e;
    e.name = name;
    auto dtype = value.find("dtype");
    if (dtype == value.end() || !dtype->is_string())
      throw bad_tensor("no \"dtype\" string");
    if (!parse_safetensors_dtype(dtype->get<std::string>(), &e.dtype))
      throw bad_tensor("unknown dtype \"" + dtype->get<std::string>() + "\"");
    auto shape = value.find("shape");
    if (shape == value.end() || !shape->is_array()) throw bad_tensor("no \"shape\" array");
    for (const auto& d : *shape) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > (uint64_t{1} << 62))
        throw bad_tensor("shape " + shape->dump() + " holds a value that is not a dimension");
      e.shape.push_back(d.get<int64_t>());
    }
    auto offsets = value.find("data_offsets");
    if (offsets == value.end() || !offsets->is_array() || offsets->size() != 2 ||
        !(*offsets)[0].is_number_unsigned() || !(*offsets)[1].is_number_unsigned())
      throw bad_tensor("no \"data_offsets\" pair of byte offsets");
    e.begin = (*offsets)[0].get<uint64_t>();
    e.end = (*offsets)[1].get<uint64_t>();
    if (e.begin > e.end || e.end > data_bytes)
      throw bad_tensor("data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) +
                       "] lie outside the " + std::to_string(data_bytes) + " data bytes");
    uint64_t bytes = 0;
    if (!shape_bytes(e.shape, safetensors_dtype_bytes(e.dtype), &bytes) || bytes != e.bytes())
      throw bad_tensor("shape " + shape_text(e.shape) + " of " + safetensors_dtype_name(e.dtype) +
                       " does not match its " + std::to_string(e.bytes()) + " data bytes");
    entries_.push_back(std::move(e));
  }

  // The ranges, in data order, must tile the data: each begins where the previous ended.
  std::stable_sort(entries_.begin(), entries_.end(),
                   [](const SafetensorsEntry& a, const SafetensorsEntry& b) {
                     return a.begin != b.begin ? a.begin < b.begin : a.end < b.end;
                   });
  uint64_t expected = 0;
  const SafetensorsEntry* previous = nullptr;
  for (const SafetensorsEntry& e : entries_) {
    if (e.begin != expected) {
      std::string what = "data_offsets [" + std::to_string(e.begin) + ", " +
                         std::to_string(e.end) + "] ";
      what += e.begin < expected
                  ? "overlap those of \"" + previous->name + "\""
                  : "leave a gap after byte " + std::to_string(expected) +
                        (previous ? " (end of \"" + previous->name + "\")" : std::string());
      throw DataError(path_ + ": tensor \"" + e.name + "\": " + what);
    }
    expected = e.end;
    previous = &e;
  }
  if (expected != data_bytes)
    throw bad("the tensors cover " + std::to_string(expected) + " of the " +
              std::to_string(data_bytes) + " data bytes (truncated or trailing bytes)");
}

const SafetensorsEntry* SafetensorsReader::find(std::string_view name) const {
  for (const SafetensorsEntry& e : entries_)
    if (e.name == name) return &e;
  return nullptr;
}

const SafetensorsEntry& SafetensorsReader::entry(std::string_view name) const {
  const SafetensorsEntry* e = find(name);
  if (!e) throw DataError(path_ + ": no tensor \"" + std::string(name) + "\"");
  return *e;
}

std::vector<std::byte> SafetensorsReader::read_bytes(std::string_view name) const {
  const SafetensorsEntry& e = entry(name);
  std::vector<std::byte> out(e.bytes());
  std::ifstream in(path_, std::ios::binary);
  in.seekg(static_cast<std::streamoff>(data_start_ + e.begin));
  if (!in || !in.read(reinterpret_cast<char*>(out.data()), static_cast<std::streamsize>(out.size())))
    throw IoError(path_ + ": tensor \"" + e.name + "\": read failed (file changed or truncated?)");
  return out;
}

std::vector<float> SafetensorsReader::read_f32(std::string_view name) const {
  const SafetensorsEntry& e = entry(name);
  if (e.dtype != SafetensorsDtype::kF32)
    throw DataError(path_ + ": tensor \"" + e.name + "\" is " + safetensors_dtype_name(e.dtype) +
                    ", not F32");
  std::vector<std::byte> bytes = read_bytes(name);
  std::vector<float> out(bytes.size() / sizeof(float));
  std::memcpy(out.data(), bytes.data(), bytes.size());
  return out;
}

}  // namespace loom
