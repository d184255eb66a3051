#pragma once
// BERT's WordPiece tokenizer over BERT's vocab.txt; ids equal Hugging Face `tokenizers`'
// BertWordPieceTokenizer(vocab.txt, lowercase=...) and transformers' BertTokenizerFast
// (add_special_tokens=False) on the same file and options.
//
// encode(text): BERT's basic tokenizer splits the text into words (io/wordpiece_basic.h,
// Note [BERT basic tokenizer]); each word becomes WordPiece tokens, greedy longest match
// first: the longest vocabulary token that starts the word, then the longest "##" token
// that continues it, and so on. A word with more than max_input_chars_per_word characters,
// or one that no sequence of tokens covers, is one [UNK]. Special tokens are never matched
// in text ("[CLS]" is the words "[", "cls", "]"), as the Tokenizer interface promises: a
// corpus's literal "[SEP]" must not end a document. This is the one difference from HF,
// whose BertWordPieceTokenizer and BertTokenizerFast match the exact text of their added
// special tokens before normalizing; the tests' texts contain none.
//
// Invalid UTF-8 (TokenizeOptions::invalid_utf8): kError throws DataError naming the source
// and the byte offset; kReplace turns each maximal invalid subpart into U+FFFD, which BERT's
// cleaning then removes (the bytes vanish: "a\xFFb" -> "ab"); kKeepBytes is refused
// (ConfigError): raw bytes have no WordPiece.
//
// decode(ids): as HF's WordPiece decoder (cleanup on): tokens joined by spaces, a "##"
// token glued to the previous one without its prefix, and " ." " ?" " !" " ," lose their
// space; special tokens are kept. For lower-case ASCII words decode(encode(x)) is x with
// its white space runs made single spaces.
//
// Threads: immutable after construction; encode from any thread (each call or each
// WordPieceEncoder keeps its own word cache).
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/tokenizer.h"
#include "io/wordpiece_basic.h"

namespace loom {

// BERT's special tokens; every vocab.txt loom reads has them all.
inline constexpr std::string_view kWordPiecePad = "[PAD]";
inline constexpr std::string_view kWordPieceUnk = "[UNK]";
inline constexpr std::string_view kWordPieceCls = "[CLS]";
inline constexpr std::string_view kWordPieceSep = "[SEP]";
inline constexpr std::string_view kWordPieceMask = "[MASK]";
inline constexpr std::string_view kWordPieceSpecials[] = {kWordPiecePad, kWordPieceUnk, kWordPieceCls,
                                                          kWordPieceSep, kWordPieceMask};
inline constexpr std::string_view kWordPiecePrefix = "##";

class WordPieceTokenizer {
 public:
  // tokens[id]: the vocabulary. DataError naming `source`:line (line = id + 1) for an empty
  // or duplicate token, or naming a missing special token.
  WordPieceTokenizer(std::vector<std::string> tokens, const WordPieceOptions& opt = {},
                     std::string_view source = "vocab.txt");
  // Reads vocab.txt: one token per line, id = line number - 1, "\r\n" accepted, trailing
  // white space of a line dropped (as HF does). IoError when unreadable.
  static WordPieceTokenizer load(const std::string& vocab_txt_path, const WordPieceOptions& opt = {});
  static WordPieceTokenizer parse(std::string_view vocab_txt, const WordPieceOptions& opt = {},
                                  std::string_view source = "vocab.txt");
  WordPieceTokenizer(WordPieceTokenizer&&) noexcept;
  WordPieceTokenizer& operator=(WordPieceTokenizer&&) noexcept;
  ~WordPieceTokenizer();

  size_t vocab_size() const;
  const std::vector<std::string>& tokens() const;
  const WordPieceOptions& options() const;
  // Over the tokens in id order AND the options (cased and uncased differ).
  uint64_t fingerprint() const;
  std::optional<uint32_t> token_id(std::string_view token) const;
  std::string_view token(uint32_t id) const;   // id < vocab_size()
  uint32_t pad_id() const;
  uint32_t unk_id() const;
  uint32_t cls_id() const;
  uint32_t sep_id() const;
  uint32_t mask_id() const;

  // One call, its own cache: for many calls keep a WordPieceEncoder.
  std::vector<uint32_t> encode(std::string_view text, const TokenizeOptions& opt = {}) const;
  // docs[0] [SEP] docs[1] ... [SEP] docs[n-1] on opt.threads threads (contiguous blocks of
  // documents, each thread its own encoder): the ids of one thread. The first error in
  // document order is rethrown.
  void encode_documents(std::span<const std::string_view> docs, std::vector<uint32_t>& out,
                        const TokenizeOptions& opt = {}) const;
  // DataError naming the position of an id >= vocab_size().
  std::string decode(std::span<const uint32_t> ids) const;
  // vocab.txt, crash-safely (io/atomic_file.h): the tokens in id order, one per line.
  void save(const std::string& path) const;

  struct Impl;

 private:
  friend class WordPieceEncoder;
  std::unique_ptr<const Impl> impl_;
};

// vocab.txt's text for tokens (one per line, each followed by "\n").
std::string format_vocab_txt(std::span<const std::string> tokens);

class WordPieceEncoder {
 public:
  // cache_words: words remembered with their ids (emptied when full).
  explicit WordPieceEncoder(const WordPieceTokenizer& tokenizer, size_t cache_words = size_t{1} << 16);
  WordPieceEncoder(WordPieceEncoder&&) noexcept;
  ~WordPieceEncoder();

  void encode(std::string_view text, std::vector<uint32_t>& out, const TokenizeOptions& opt = {});
  // docs joined by [SEP] (none after the last); opt.source_offset is not advanced.
  void encode_documents(std::span<const std::string_view> docs, std::vector<uint32_t>& out,
                        const TokenizeOptions& opt = {});
  // The WordPiece ids of one word of the basic tokenizer (appended).
  void encode_word(std::string_view word, std::vector<uint32_t>& out);

  struct State;

 private:
  const WordPieceTokenizer::Impl* tok_;
  std::unique_ptr<State> state_;
};

}  // namespace loom
