#pragma once
// Tokenizer: the one interface the transformer models and the token stage use over loom's
// tokenizers - byte-level BPE in GPT-2's files (io/bpe_tokenizer.h), BERT's WordPiece
// (io/wordpiece.h) and the character tokenizer (io/char_tokenizer.h). Every implementation
// is immutable after loading: encode/decode may be called from any thread at once.
//
// Documents: a corpus is a list of documents. encode_documents(docs) gives
//   ids(docs[0]) SEP ids(docs[1]) ... SEP ids(docs[n-1])
// where SEP is the end-of-text token for a tokenizer that has one (GPT-2's "<|endoftext|>",
// BERT's "[SEP]"),
// and otherwise the ids of `text_separator` (the character tokenizer: the text that
// delimited the documents in the corpus, e.g. "\n\n", so the stream reads like the text).
// Each document is encoded alone, so the ids do not depend on how the documents were
// grouped into calls, threads or ranks.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/bpe_pretokenize.h"   // InvalidUtf8

namespace loom {

class BpeTokenizer;
class CharTokenizer;
class WordPieceTokenizer;

struct TokenizeOptions {
  InvalidUtf8 invalid_utf8 = InvalidUtf8::kError;   // kError or kReplace (char refuses kKeepBytes)
  std::string_view source = "text";   // names the input in error messages (a file name)
  uint64_t source_offset = 0;         // byte offset of the text within `source`
  int threads = 1;                    // encode_documents: blocks of documents on this many threads
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  virtual std::string_view kind() const = 0;          // "bpe", "wordpiece", "char"
  virtual size_t vocab_size() const = 0;
  // Identifies the vocabulary's content (not its files' formatting); token shards store it.
  virtual uint64_t fingerprint() const = 0;
  // The end-of-text id between documents, where the tokenizer has one (char: none).
  virtual std::optional<uint32_t> eot_id() const = 0;
  // The id of a special token by its name ("[CLS]", "[SEP]", "[MASK]", "[PAD]", "[UNK]" for
  // WordPiece; "<|endoftext|>" for BPE when its vocabulary has it); none otherwise.
  virtual std::optional<uint32_t> special_id(std::string_view name) const {
    (void)name;
    return std::nullopt;
  }

  // Appends the ids of one text (no special tokens are recognised in it).
  virtual void encode_append(std::string_view text, std::vector<uint32_t>& out,
                             const TokenizeOptions& opt = {}) const = 0;
  // Appends docs joined by the separator (see above) on opt.threads threads; the ids equal
  // those of one thread. DataError for invalid UTF-8 (kError) or an unknown character.
  virtual void encode_documents(std::span<const std::string_view> docs,
                                std::string_view text_separator, std::vector<uint32_t>& out,
                                const TokenizeOptions& opt = {}) const = 0;
  // The separator's ids alone (to join two calls of encode_documents).
  virtual std::vector<uint32_t> separator_ids(std::string_view text_separator) const = 0;
  // The bytes of ids; DataError naming the position of an id >= vocab_size().
  virtual std::string decode(std::span<const uint32_t> ids) const = 0;

  // Writes the tokenizer's own files into `dir` (created if missing) crash-safely, for
  // exports next to a model: vocab.json + merges.txt (bpe), vocab.txt (wordpiece),
  // char_vocab.txt (char).
  // Returns the paths written, in that order.
  virtual std::vector<std::string> save_files(const std::string& dir) const = 0;

  // One line for logs: "bpe, 50257 tokens, fingerprint 0123456789abcdef".
  std::string describe() const;

  std::vector<uint32_t> encode(std::string_view text, const TokenizeOptions& opt = {}) const {
    std::vector<uint32_t> out;
    encode_append(text, out, opt);
    return out;
  }
};

// File names save_files writes.
inline constexpr std::string_view kBpeVocabFile = "vocab.json";
inline constexpr std::string_view kBpeMergesFile = "merges.txt";
inline constexpr std::string_view kCharVocabFile = "char_vocab.txt";
inline constexpr std::string_view kWordPieceVocabFile = "vocab.txt";

std::unique_ptr<Tokenizer> make_tokenizer(BpeTokenizer bpe);
std::unique_ptr<Tokenizer> make_tokenizer(CharTokenizer chars);
std::unique_ptr<Tokenizer> make_tokenizer(WordPieceTokenizer wordpiece);

// Settings of load_tokenizer that are not in the files (config: tokens.lowercase).
struct TokenizerLoadOptions {
  bool lowercase = true;   // wordpiece: uncased BERT (lower case, accents stripped)
};

// kind "bpe": paths = {vocab.json, merges.txt}; kind "wordpiece": paths = {vocab.txt};
// kind "char": paths = {char vocab file}.
// ConfigError for another kind or the wrong number of paths; IoError for a file that cannot
// be read; DataError naming file:line for a malformed or inconsistent file (a merge whose
// parts or result is not in vocab.json; a duplicate or empty line in vocab.txt) or naming a
// missing special token.
std::unique_ptr<Tokenizer> load_tokenizer(std::string_view kind,
                                          std::span<const std::string> paths,
                                          const TokenizerLoadOptions& options = {});

// The fingerprint as 16 hex digits, as manifests and messages print it.
std::string fingerprint_hex(uint64_t fingerprint);

}  // namespace loom
