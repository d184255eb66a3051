#pragma once
// Byte-level BPE with GPT-2's algorithm; ids equal Hugging Face `tokenizers`' ByteLevel BPE
// (add_prefix_space=False) on the same vocab.json/merges.txt.
//
// encode(text): the text is split by GPT-2's pre-tokenizer (io/bpe_pretokenize.h); each
// piece starts as one token per byte, and merges are applied by rank: the adjacent pair
// with the lowest rank merges first, the leftmost occurrence first when a pair repeats,
// until no adjacent pair has a merge. Special tokens are never produced by merging; with
// allow_special their literal text (e.g. "<|endoftext|>") encodes to their id.
// decode(ids) concatenates the tokens' bytes: decode(encode(x)) == x for valid UTF-8 x, and
// for any bytes x under InvalidUtf8::kKeepBytes.
//
// Threads: a BpeTokenizer is immutable and may be shared; each thread encodes through its
// own BpeEncoder (word cache and scratch space; no locks, no allocation per word once warm).
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/bpe_files.h"
#include "io/bpe_pretokenize.h"

namespace loom {

struct BpeEncodeOptions {
  bool allow_special = false;     // literal special-token text -> its id (else plain text)
  InvalidUtf8 invalid_utf8 = InvalidUtf8::kError;
  std::string_view source = "text";   // names the input in error messages (a file name)
  uint64_t source_offset = 0;         // byte offset of text[0] within `source`
};

class BpeTokenizer {
 public:
  explicit BpeTokenizer(BpeVocab vocab);
  // Reads vocab.json + merges.txt (io/bpe_files.h for the format and its errors).
  static BpeTokenizer load(const std::string& vocab_json_path, const std::string& merges_txt_path,
                           std::span<const std::string_view> special_tokens = kDefaultSpecials);
  BpeTokenizer(BpeTokenizer&&) noexcept;
  BpeTokenizer& operator=(BpeTokenizer&&) noexcept;
  ~BpeTokenizer();

  size_t vocab_size() const;
  const BpeVocab& vocab() const;
  uint64_t fingerprint() const;                  // bpe_fingerprint(vocab())
  std::optional<uint32_t> special_id(std::string_view text) const;
  uint32_t eot_id() const;                       // "<|endoftext|>"; DataError when absent
  std::string_view token_bytes(uint32_t id) const;

  // One call, its own cache: for many calls keep a BpeEncoder.
  std::vector<uint32_t> encode(std::string_view text, const BpeEncodeOptions& opt = {}) const;
  // Appends the bytes of ids to out; an id >= vocab_size() is a DataError naming its index.
  void decode_append(std::span<const uint32_t> ids, std::string& out) const;
  std::string decode(std::span<const uint32_t> ids) const;

  struct Impl;

 private:
  friend class BpeEncoder;
  std::unique_ptr<const Impl> impl_;
};

class BpeEncoder {
 public:
  // cache_words: pieces remembered with their ids (the cache is emptied when full).
  explicit BpeEncoder(const BpeTokenizer& tokenizer, size_t cache_words = size_t{1} << 16);
  BpeEncoder(BpeEncoder&&) noexcept;
  ~BpeEncoder();

  // Appends the ids of text to out.
  void encode(std::string_view text, std::vector<uint32_t>& out, const BpeEncodeOptions& opt = {});
  // Appends docs[0] <|endoftext|> docs[1] ... docs[n-1]: the separator between documents,
  // none after the last. opt.source_offset is not advanced between documents.
  void encode_documents(std::span<const std::string_view> docs, std::vector<uint32_t>& out,
                        const BpeEncodeOptions& opt = {});

  struct State;

 private:
  void encode_plain(std::string_view text, uint64_t offset, std::vector<uint32_t>& out,
                    const BpeEncodeOptions& opt);
  void encode_piece(std::string_view piece, std::vector<uint32_t>& out);
  const BpeTokenizer::Impl* tok_;
  std::unique_ptr<State> state_;
};

// encode_documents on `threads` threads: each takes a contiguous block of documents with
// its own BpeEncoder; the blocks are joined in order, so the ids are exactly those of one
// BpeEncoder::encode_documents. The first error (in document order) is rethrown.
std::vector<uint32_t> encode_documents_parallel(const BpeTokenizer& tokenizer,
                                                std::span<const std::string_view> docs,
                                                int threads, const BpeEncodeOptions& opt = {});

}  // namespace loom
