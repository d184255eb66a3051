#pragma once
// Byte-level BPE vocabularies in GPT-2's file format, and GPT-2's byte-to-unicode mapping.
//
// vocab.json: one JSON object {"token": id, ...}. Tokens are written in the mapped
//   alphabet: every byte b stands for one printable code point byte_to_unicode(b)
//   (printable Latin-1 bytes stand for themselves; the others, 0x00-0x20, 0x7F-0xA0
//   and 0xAD, for U+0100 upwards in order), so "Ġthe" is the bytes " the".
//   Ids are 0..V-1, each used once.
// merges.txt: an optional first line starting with "#version", then one merge per line,
//   "left right" in the mapped alphabet; line k (0-based, not counting the version line)
//   has rank k: lower ranks merge first. Both halves and their concatenation must be in
//   vocab.json. Empty lines are skipped. A pair listed twice keeps its last rank (as
//   Hugging Face `tokenizers` does).
// Special tokens (by default "<|endoftext|>") are vocabulary entries whose text is
// taken literally: BPE never produces them; the encoder emits them where asked.
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace loom {

inline constexpr std::string_view kEndOfText = "<|endoftext|>";
inline constexpr std::string_view kDefaultSpecials[] = {kEndOfText};

// The code point GPT-2 writes for byte b.
uint32_t byte_to_unicode(uint8_t b);
// The byte a code point stands for, or -1 when it is not in the mapped alphabet.
int unicode_to_byte(uint32_t cp);
// Raw bytes -> their mapped spelling (UTF-8), as in vocab.json and merges.txt.
std::string bytes_to_mapped(std::string_view raw);

struct BpeMerge {
  uint32_t left;     // token ids
  uint32_t right;
  uint32_t result;   // id of the token whose bytes are left's followed by right's
};

struct BpeVocab {
  std::vector<std::string> tokens;    // (V) by id: raw bytes; special tokens: their text
  std::vector<uint8_t> special;       // (V) 1 for special tokens
  std::vector<BpeMerge> merges;       // (M) in rank order
};

// Reads vocab.json + merges.txt. Every one of the 256 single bytes must be a token (GPT-2
// and Hugging Face's byte-level trainer always include them). Throws IoError for a file
// that cannot be read and DataError naming file:line (merges) or the token (vocab) for
// anything malformed or inconsistent.
BpeVocab read_bpe_files(const std::string& vocab_json_path, const std::string& merges_txt_path,
                        std::span<const std::string_view> special_tokens = kDefaultSpecials);

// The same from the files' contents; `vocab_name`/`merges_name` label error messages.
BpeVocab parse_bpe_files(std::string_view vocab_json, std::string_view merges_txt,
                         std::span<const std::string_view> special_tokens,
                         const std::string& vocab_name, const std::string& merges_name);

// Writes both files crash-safely (each: tmp, fsync, rename, fsync directory) in the layout
// Hugging Face `tokenizers` writes: vocab.json compact and ordered by id, non-ASCII as
// UTF-8; merges.txt with a "#version: 0.2" first line.
void write_bpe_files(const BpeVocab& vocab, const std::string& vocab_json_path,
                     const std::string& merges_txt_path);
std::string format_vocab_json(const BpeVocab& vocab);
std::string format_merges_txt(const BpeVocab& vocab);

// 64-bit FNV-1a over the vocabulary's content (tokens, special flags, merges in order):
// the same for the same tokenizer however its files are formatted. Token shards store it.
uint64_t bpe_fingerprint(const BpeVocab& vocab);

}  // namespace loom
