#include "io/tokenizer.h"

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <thread>

#include "core/error.h"
#include "io/bpe_tokenizer.h"
#include "io/char_tokenizer.h"
#include "io/wordpiece.h"

namespace loom {
namespace {

BpeEncodeOptions bpe_options(const TokenizeOptions& opt) {
  BpeEncodeOptions o;
  o.allow_special = false;
  o.invalid_utf8 = opt.invalid_utf8;
  o.source = opt.source;
  o.source_offset = opt.source_offset;
  return o;
}

CharEncodeOptions char_options(const TokenizeOptions& opt) {
  CharEncodeOptions o;
  o.invalid_utf8 = opt.invalid_utf8;
  o.source = opt.source;
  o.source_offset = opt.source_offset;
  return o;
}

std::string make_dir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw IoError("cannot create the directory " + dir + ": " + ec.message());
  return dir + "/";
}

class BpeTextTokenizer final : public Tokenizer {
 public:
  explicit BpeTextTokenizer(BpeTokenizer tok) : tok_(std::move(tok)) {}
  std::string_view kind() const override { return "bpe"; }
  size_t vocab_size() const override { return tok_.vocab_size(); }
  uint64_t fingerprint() const override { return tok_.fingerprint(); }
  std::optional<uint32_t> eot_id() const override { return tok_.special_id(kEndOfText); }

  void encode_append(std::string_view text, std::vector<uint32_t>& out,
                     const TokenizeOptions& opt) const override {
    BpeEncoder(tok_, size_t{1} << 10).encode(text, out, bpe_options(opt));
  }
  void encode_documents(std::span<const std::string_view> docs, std::string_view,
                        std::vector<uint32_t>& out, const TokenizeOptions& opt) const override {
    if (opt.threads <= 1) {
      BpeEncoder(tok_).encode_documents(docs, out, bpe_options(opt));
      return;
    }
    std::vector<uint32_t> ids = encode_documents_parallel(tok_, docs, opt.threads, bpe_options(opt));
    out.insert(out.end(), ids.begin(), ids.end());
  }
  std::vector<uint32_t> separator_ids(std::string_view) const override { return {tok_.eot_id()}; }
  std::string decode(std::span<const uint32_t> ids) const override { return tok_.decode(ids); }
  std::vector<std::string> save_files(const std::string& dir) const override {
    const std::string d = make_dir(dir);
    std::vector<std::string> paths = {d + std::string(kBpeVocabFile), d + std::string(kBpeMergesFile)};
    write_bpe_files(tok_.vocab(), paths[0], paths[1]);
    return paths;
  }

 private:
  BpeTokenizer tok_;
};

class CharTextTokenizer final : public Tokenizer {
 public:
  explicit CharTextTokenizer(CharTokenizer tok) : tok_(std::move(tok)) {}
  std::string_view kind() const override { return "char"; }
  size_t vocab_size() const override { return tok_.vocab_size(); }
  uint64_t fingerprint() const override { return tok_.fingerprint(); }
  std::optional<uint32_t> eot_id() const override { return std::nullopt; }

  void encode_append(std::string_view text, std::vector<uint32_t>& out,
                     const TokenizeOptions& opt) const override {
    tok_.encode_append(text, out, char_options(opt));
  }
  // Contiguous blocks of documents per thread, joined in order (as encode_documents_parallel).
  void encode_documents(std::span<const std::string_view> docs, std::string_view text_separator,
                        std::vector<uint32_t>& out, const TokenizeOptions& opt) const override {
    const std::vector<uint32_t> sep = separator_ids(text_separator);
    const size_t parts = std::clamp<size_t>(static_cast<size_t>(std::max(opt.threads, 1)), 1,
                                            std::max<size_t>(docs.size(), 1));
    std::vector<std::vector<uint32_t>> ids(parts);   // (parts) each block's ids
    std::vector<std::exception_ptr> errors(parts);
    auto run = [&](size_t p) {
      try {
        const size_t begin = docs.size() * p / parts, end = docs.size() * (p + 1) / parts;
        for (size_t d = begin; d < end; ++d) {
          if (d > 0) ids[p].insert(ids[p].end(), sep.begin(), sep.end());
          tok_.encode_append(docs[d], ids[p], char_options(opt));
        }
      } catch (...) {
        errors[p] = std::current_exception();
      }
    };
    std::vector<std::thread> pool;
    for (size_t p = 1; p < parts; ++p) pool.emplace_back(run, p);
    run(0);
    for (std::thread& t : pool) t.join();
    for (const std::exception_ptr& e : errors)
      if (e) std::rethrow_exception(e);
    for (const std::vector<uint32_t>& block : ids) out.insert(out.end(), block.begin(), block.end());
  }
  std::vector<uint32_t> separator_ids(std::string_view text_separator) const override {
    CharEncodeOptions o;
    o.source = "the document separator";
    return tok_.encode(text_separator, o);
  }
  std::string decode(std::span<const uint32_t> ids) const override { return tok_.decode(ids); }
  std::vector<std::string> save_files(const std::string& dir) const override {
    const std::string path = make_dir(dir) + std::string(kCharVocabFile);
    tok_.save(path);
    return {path};
  }

 private:
  CharTokenizer tok_;
};

class WordPieceTextTokenizer final : public Tokenizer {
 public:
  explicit WordPieceTextTokenizer(WordPieceTokenizer tok) : tok_(std::move(tok)) {}
  std::string_view kind() const override { return "wordpiece"; }
  size_t vocab_size() const override { return tok_.vocab_size(); }
  uint64_t fingerprint() const override { return tok_.fingerprint(); }
  std::optional<uint32_t> eot_id() const override { return tok_.sep_id(); }
  std::optional<uint32_t> special_id(std::string_view name) const override {
    if (name == "[PAD]") return tok_.pad_id();
    if (name == "[UNK]") return tok_.unk_id();
    if (name == "[CLS]") return tok_.cls_id();
    if (name == "[SEP]") return tok_.sep_id();
    if (name == "[MASK]") return tok_.mask_id();
    return std::nullopt;
  }

  void encode_append(std::string_view text, std::vector<uint32_t>& out,
                     const TokenizeOptions& opt) const override {
    WordPieceEncoder(tok_, size_t{1} << 10).encode(text, out, opt);
  }
  void encode_documents(std::span<const std::string_view> docs, std::string_view,
                        std::vector<uint32_t>& out, const TokenizeOptions& opt) const override {
    tok_.encode_documents(docs, out, opt);
  }
  std::vector<uint32_t> separator_ids(std::string_view) const override { return {tok_.sep_id()}; }
  std::string decode(std::span<const uint32_t> ids) const override { return tok_.decode(ids); }
  std::vector<std::string> save_files(const std::string& dir) const override {
    const std::string path = make_dir(dir) + std::string(kWordPieceVocabFile);
    tok_.save(path);
    return {path};
  }

 private:
  WordPieceTokenizer tok_;
};

}  // namespace

std::string fingerprint_hex(uint64_t fingerprint) {
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(fingerprint));
  return buf;
}

std::string Tokenizer::describe() const {
  return std::string(kind()) + ", " + std::to_string(vocab_size()) + " tokens, fingerprint " +
         fingerprint_hex(fingerprint());
}

std::unique_ptr<Tokenizer> make_tokenizer(BpeTokenizer bpe) {
  return std::make_unique<BpeTextTokenizer>(std::move(bpe));
}

std::unique_ptr<Tokenizer> make_tokenizer(CharTokenizer chars) {
  return std::make_unique<CharTextTokenizer>(std::move(chars));
}

std::unique_ptr<Tokenizer> make_tokenizer(WordPieceTokenizer wordpiece) {
  return std::make_unique<WordPieceTextTokenizer>(std::move(wordpiece));
}

std::unique_ptr<Tokenizer> load_tokenizer(std::string_view kind,
                                          std::span<const std::string> paths,
                                          const TokenizerLoadOptions& options) {
  if (kind == "bpe") {
    LOOM_CHECK(paths.size() == 2 && !paths[0].empty() && !paths[1].empty(), ConfigError,
               "a BPE tokenizer needs two files, vocab.json and merges.txt (tokens.vocab and "
               "tokens.merges); learn them with `loom tokenizer train`");
    return make_tokenizer(BpeTokenizer::load(paths[0], paths[1]));
  }
  if (kind == "wordpiece") {
    LOOM_CHECK(paths.size() == 1 && !paths[0].empty(), ConfigError,
               "a WordPiece tokenizer needs one file, BERT's vocab.txt (tokens.vocab); learn it "
               "with `loom tokenizer train --kind wordpiece`");
    WordPieceOptions opt;
    opt.lowercase = options.lowercase;
    return make_tokenizer(WordPieceTokenizer::load(paths[0], opt));
  }
  if (kind == "char") {
    LOOM_CHECK(paths.size() == 1 && !paths[0].empty(), ConfigError,
               "a character tokenizer needs one file, its character vocabulary (tokens.vocab)");
    return make_tokenizer(CharTokenizer::load(paths[0]));
  }
  throw ConfigError("unknown tokenizer kind \"" + std::string(kind) + "\"; loom has bpe, wordpiece and char");
}

}  // namespace loom
