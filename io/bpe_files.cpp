#include "io/bpe_files.h"

#include <array>
#include <cstdio>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/token_fingerprint.h"
#include "io/unicode_class.h"

namespace loom {
namespace {

// GPT-2's table: printable bytes keep their code point, the 68 others take U+0100.. in
// byte order.
struct ByteMap {
  std::array<uint32_t, 256> to_cp{};
  std::array<int16_t, 256 + 68> to_byte{};
  ByteMap() {
    to_byte.fill(-1);
    uint32_t next = 256;
    for (int b = 0; b < 256; ++b) {
      bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
      to_cp[b] = printable ? static_cast<uint32_t>(b) : next++;
      to_byte[to_cp[b]] = static_cast<int16_t>(b);
    }
  }
};
const ByteMap& byte_map() {
  static const ByteMap map;
  return map;
}

// The raw bytes a mapped token stands for; false (and the offending code point) if a
// character is outside the mapped alphabet or the text is not UTF-8.
bool mapped_to_bytes(std::string_view mapped, std::string& raw, uint32_t& bad_cp) {
  raw.clear();
  const auto* p = reinterpret_cast<const unsigned char*>(mapped.data());
  const auto* end = p + mapped.size();
  while (p < end) {
    unicode::Utf8Char c = unicode::decode_utf8(p, end);
    int b = c.cp == unicode::kInvalidCodePoint ? -1 : unicode_to_byte(c.cp);
    if (b < 0) {
      bad_cp = c.cp;
      return false;
    }
    raw.push_back(static_cast<char>(b));
    p += c.len;
  }
  return true;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError(path + ": cannot open for reading");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw IoError(path + ": read failed");
  return std::move(text).str();
}

std::string describe_cp(uint32_t cp) {
  if (cp == unicode::kInvalidCodePoint) return "invalid UTF-8";
  char buf[16];
  std::snprintf(buf, sizeof(buf), "U+%04X", cp);
  return buf;
}

// Fills vocab.tokens/special from vocab.json; returns raw bytes -> id of ordinary tokens.
std::unordered_map<std::string, uint32_t> parse_vocab_json(
    std::string_view text, std::span<const std::string_view> specials, const std::string& name,
    BpeVocab& vocab) {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(text.begin(), text.end());
  } catch (const nlohmann::json::parse_error& e) {
    throw DataError(name + ": not valid JSON (byte " + std::to_string(e.byte) + "): " + e.what());
  }
  if (!doc.is_object())
    throw DataError(name + ": expected a JSON object {\"token\": id, ...}");
  const size_t size = doc.size();
  vocab.tokens.assign(size, {});
  vocab.special.assign(size, 0);
  std::vector<uint8_t> seen(size, 0);
  std::unordered_map<std::string, uint32_t> by_bytes;
  std::string raw;
  for (const auto& [key, value] : doc.items()) {
    if (!value.is_number_integer() || value.get<int64_t>() < 0 ||
        value.get<int64_t>() >= static_cast<int64_t>(size))
      throw DataError(name + ": token \"" + key + "\" has id " + value.dump() + "; ids must be 0.." +
                      std::to_string(size - 1) + " (one per token)");
    const auto id = value.get<uint32_t>();
    if (seen[id])
      throw DataError(name + ": id " + std::to_string(id) + " is given to two tokens (\"" + key +
                      "\" and another)");
    seen[id] = 1;
    bool is_special = false;
    for (std::string_view s : specials) is_special |= (s == key);
    if (is_special) {
      vocab.tokens[id] = key;
      vocab.special[id] = 1;
      continue;
    }
    uint32_t bad = 0;
    if (!mapped_to_bytes(key, raw, bad))
      throw DataError(name + ": token \"" + key + "\" (id " + std::to_string(id) + ") has " +
                      describe_cp(bad) + ", which is not in GPT-2's byte alphabet; such a "
                      "token must be declared a special token");
    vocab.tokens[id] = raw;
    by_bytes.emplace(raw, id);
  }
  for (int b = 0; b < 256; ++b)
    if (!by_bytes.count(std::string(1, static_cast<char>(b)))) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "0x%02X", b);
      throw DataError(name + ": no token for the single byte " + buf + " (\"" +
                      bytes_to_mapped(std::string(1, static_cast<char>(b))) +
                      "\"); a byte-level BPE vocabulary needs all 256");
    }
  return by_bytes;
}

void parse_merges_txt(std::string_view text, const std::string& name,
                      const std::unordered_map<std::string, uint32_t>& by_bytes,
                      BpeVocab& vocab) {
  std::string left_raw, right_raw;
  size_t line_no = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty() || line.starts_with("#version")) continue;
    const std::string where = name + ":" + std::to_string(line_no) + ": ";
    size_t space = line.find(' ');
    if (space == std::string_view::npos || line.find(' ', space + 1) != std::string_view::npos)
      throw DataError(where + "expected \"left right\" (two tokens, one space), got \"" +
                      std::string(line) + "\"");
    std::string_view left = line.substr(0, space), right = line.substr(space + 1);
    uint32_t bad = 0;
    auto lookup = [&](std::string_view mapped, std::string& raw) -> uint32_t {
      auto it = mapped_to_bytes(mapped, raw, bad) ? by_bytes.find(raw) : by_bytes.end();
      if (it == by_bytes.end())
        throw DataError(where + "\"" + std::string(mapped) +
                        "\" is not a token of the vocabulary (vocab.json and merges.txt "
                        "from different tokenizers?)");
      return it->second;
    };
    uint32_t l = lookup(left, left_raw), r = lookup(right, right_raw);
    auto it = by_bytes.find(left_raw + right_raw);
    if (it == by_bytes.end())
      throw DataError(where + "merging \"" + std::string(left) + "\" and \"" + std::string(right) +
                      "\" makes a token the vocabulary lacks (vocab.json and merges.txt from "
                      "different tokenizers?)");
    vocab.merges.push_back({l, r, it->second});
  }
}

void append_json_string(std::string& out, std::string_view s) {
  out.push_back('"');
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      case '\b': out += "\\b"; break;
      case '\f': out += "\\f"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out.push_back(static_cast<char>(c));
        }
    }
  }
  out.push_back('"');
}

std::string spelled(const BpeVocab& vocab, uint32_t id) {
  return vocab.special[id] ? vocab.tokens[id] : bytes_to_mapped(vocab.tokens[id]);
}

}  // namespace

uint32_t byte_to_unicode(uint8_t b) { return byte_map().to_cp[b]; }

int unicode_to_byte(uint32_t cp) {
  return cp < byte_map().to_byte.size() ? byte_map().to_byte[cp] : -1;
}

std::string bytes_to_mapped(std::string_view raw) {
  std::string out;
  out.reserve(raw.size() * 2);
  char buf[4];
  for (unsigned char b : raw) out.append(buf, unicode::encode_utf8(byte_to_unicode(b), buf));
  return out;
}

BpeVocab parse_bpe_files(std::string_view vocab_json, std::string_view merges_txt,
                         std::span<const std::string_view> special_tokens,
                         const std::string& vocab_name, const std::string& merges_name) {
  BpeVocab vocab;
  auto by_bytes = parse_vocab_json(vocab_json, special_tokens, vocab_name, vocab);
  parse_merges_txt(merges_txt, merges_name, by_bytes, vocab);
  return vocab;
}

BpeVocab read_bpe_files(const std::string& vocab_json_path, const std::string& merges_txt_path,
                        std::span<const std::string_view> special_tokens) {
  const std::string vocab_json = read_file(vocab_json_path);   // first: errors name it first
  const std::string merges_txt = read_file(merges_txt_path);
  return parse_bpe_files(vocab_json, merges_txt, special_tokens, vocab_json_path, merges_txt_path);
}

std::string format_vocab_json(const BpeVocab& vocab) {
  std::string out = "{";
  for (uint32_t id = 0; id < vocab.tokens.size(); ++id) {
    if (id) out.push_back(',');
    append_json_string(out, spelled(vocab, id));
    out.push_back(':');
    out += std::to_string(id);
  }
  out.push_back('}');
  return out;
}

std::string format_merges_txt(const BpeVocab& vocab) {
  std::string out = "#version: 0.2\n";
  for (const BpeMerge& m : vocab.merges) {
    out += spelled(vocab, m.left);
    out.push_back(' ');
    out += spelled(vocab, m.right);
    out.push_back('\n');
  }
  return out;
}

void write_bpe_files(const BpeVocab& vocab, const std::string& vocab_json_path,
                     const std::string& merges_txt_path) {
  write_file_atomically(vocab_json_path, format_vocab_json(vocab));
  write_file_atomically(merges_txt_path, format_merges_txt(vocab));
}

uint64_t bpe_fingerprint(const BpeVocab& vocab) {
  Fingerprint f("loom-bpe-v1");
  f.add_u64(vocab.tokens.size());
  for (size_t id = 0; id < vocab.tokens.size(); ++id) {
    f.add_bytes(vocab.tokens[id]);
    f.add_u64(vocab.special[id]);
  }
  f.add_u64(vocab.merges.size());
  for (const BpeMerge& m : vocab.merges) {
    f.add_u64(m.left);
    f.add_u64(m.right);
    f.add_u64(m.result);
  }
  return f.value();
}

}  // namespace loom
