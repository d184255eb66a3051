#pragma once
// Learning a WordPiece vocabulary (BERT's vocab.txt) from word counts, the way Hugging Face
// `tokenizers`' WordPieceTrainer does it (BertWordPieceTokenizer.train: BPE merges with the
// "##" continuation prefix, limit_alphabet 1000, min_frequency 2), made deterministic.
//
// Counting is separate from learning so that ranks can count their shards alone: each
// counts the words of BERT's basic tokenizer in its text (count_wordpiece_words), the
// tables are summed exactly (merge_word_counts, or serialize_word_counts -> exchange ->
// deserialize_word_counts from io/bpe_train.h: the same table type), and one table is
// trained.
//
// Note [WordPiece training order]
// Ids, in this order:
//   1. the special tokens [PAD] [UNK] [CLS] [SEP] [MASK];
//   2. the alphabet: the characters of the words (counted with their words' counts); when
//      there are more than limit_alphabet, the most frequent are kept (ties: the smaller
//      code point), and the others are dropped from the words (as HF does); the kept ones
//      in code point order;
//   3. the continuation forms "##c" of the alphabet characters that occur after a word's
//      first character, in code point order (HF adds them in its hash map's order);
//   4. one token per merge: each step merges the adjacent pair with the highest count over
//      all words (weighted by the word's count), ties to the smaller (left id, right id);
//      the result is left + right without right's "##" ("##a" + "##b" = "##ab",
//      "a" + "##b" = "ab"); a result already present keeps its id (and does not count).
// Training stops at vocab_size tokens or when the best pair is seen fewer than
// max(1, min_frequency) times; then the vocabulary is smaller than asked (the caller warns).
// The result depends on the counts alone: not on hash order, threads or how counting was
// split.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "io/bpe_train.h"   // BpeWordCounts and its (de)serialization
#include "io/tokenizer.h"
#include "io/wordpiece_basic.h"

namespace loom {

// Adds the basic tokenizer's words of `text` (one document) to counts. The text's invalid
// UTF-8 follows opt.invalid_utf8 (kError: DataError naming opt.source and the byte).
void count_wordpiece_words(const BertBasicTokenizer& basic, std::string_view text, BpeWordCounts& counts,
                           const TokenizeOptions& opt = {});

struct WordPieceTrainOptions {
  size_t vocab_size = 30522;      // tokens in all (BERT-base's size)
  uint64_t min_frequency = 2;     // a pair seen fewer times is never merged
  size_t limit_alphabet = 1000;   // characters kept (the most frequent)
};

// The vocabulary in id order (Note [WordPiece training order]). ConfigError when vocab_size
// is below the 5 special tokens.
std::vector<std::string> train_wordpiece(const BpeWordCounts& counts, const WordPieceTrainOptions& opt);

}  // namespace loom
