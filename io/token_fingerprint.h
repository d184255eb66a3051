#pragma once
// 64-bit FNV-1a, the fingerprint tokenizers give their content so that token shards can
// name the tokenizer that wrote them. Not a cryptographic hash: it catches a shard paired
// with the wrong tokenizer, not a forgery.
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace loom {

class Fingerprint {
 public:
  explicit Fingerprint(std::string_view kind) { add_bytes(kind); }
  void add_bytes(std::string_view bytes) {
    add_u64(bytes.size());
    for (unsigned char c : bytes) mix(c);
  }
  void add_u64(uint64_t v) {
    for (int i = 0; i < 8; ++i) mix(static_cast<unsigned char>(v >> (8 * i)));
  }
  uint64_t value() const { return h_; }

 private:
  void mix(unsigned char c) {
    h_ ^= c;
    h_ *= 0x100000001B3ULL;
  }
  uint64_t h_ = 0xCBF29CE484222325ULL;
};

}  // namespace loom
