#pragma once
// Learning a byte-level BPE vocabulary from word counts, as Hugging Face `tokenizers`'
// BpeTrainer does for ByteLevel BPE (same merges, same ids, on the same counts).
//
// Counting is separate from learning so that ranks can count their shards alone: each
// counts its text (count_bpe_words), the tables are merged (merge_word_counts, or
// serialize_word_counts -> exchange -> deserialize_word_counts), and one table is trained.
//
// Note [BPE training order]
// Ids: the special tokens first (in the order given), then the 256 single bytes ordered by
// their mapped code point (byte_to_unicode), then one id per learned token. Each step merges
// the pair of adjacent tokens with the highest count over all words (a word's pairs counted
// at every position, weighted by the word's count); ties go to the pair with the smaller
// (left id, right id). Within a word the pair merges left to right ("aaaa" -> "aa aa").
// A merge whose result already exists reuses that id (and is still listed in merges.txt).
// Training stops when the vocabulary has vocab_size tokens, or when the best count is below
// max(1, min_frequency). The result depends on the counts alone: not on hash order,
// threads or how counting was split.
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/bpe_files.h"
#include "io/bpe_pretokenize.h"

namespace loom {

// Pre-tokenized pieces (raw bytes) -> occurrences.
using BpeWordCounts = std::unordered_map<std::string, uint64_t>;

struct BpeCountOptions {
  InvalidUtf8 invalid_utf8 = InvalidUtf8::kError;
  std::string_view source = "text";   // names the input in error messages
  uint64_t source_offset = 0;         // byte offset of text[0] within `source`
};

// Adds the GPT-2 pieces of `text` (one document: pieces never span two calls) to counts.
void count_bpe_words(std::string_view text, BpeWordCounts& counts,
                     const BpeCountOptions& opt = {});
// into[w] += from[w] for every word.
void merge_word_counts(BpeWordCounts& into, const BpeWordCounts& from);

// A byte string for exchanging counts between ranks ("LBWC", version, then (length, bytes,
// count) per word in byte order: the same table gives the same bytes).
std::string serialize_word_counts(const BpeWordCounts& counts);
// Adds a serialized table to counts; DataError naming `source` if it is damaged.
void deserialize_word_counts(std::string_view bytes, BpeWordCounts& counts,
                             std::string_view source = "word counts");

struct BpeTrainOptions {
  size_t vocab_size = 50257;           // tokens in all: specials + 256 bytes + merges
  uint64_t min_frequency = 2;          // a pair seen fewer times is never merged
  std::vector<std::string> special_tokens = {std::string(kEndOfText)};
};

// Learns merges (Note [BPE training order]); ConfigError if vocab_size < specials + 256.
BpeVocab train_bpe(const BpeWordCounts& counts, const BpeTrainOptions& opt);

}  // namespace loom
