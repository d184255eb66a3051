#include "io/wordpiece.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <exception>
#include <fstream>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "io/atomic_file.h"
#include "io/bpe_word_cache.h"
#include "io/token_fingerprint.h"

namespace loom {
namespace {

// Token bytes -> id in one flat open-addressing table (no node per entry): the WordPiece
// loop asks several times per word. Keys are views into the tokenizer's token strings.
class TokenIndex {
 public:
  void build(const std::vector<std::string>& tokens, size_t skip_prefix, bool only_prefixed) {
    slots_.assign(std::bit_ceil(std::max<size_t>(tokens.size() * 2, 16)), Slot{0, 0, {}});
    mask_ = slots_.size() - 1;
    for (uint32_t id = 0; id < tokens.size(); ++id) {
      std::string_view t = tokens[id];
      if (only_prefixed) {
        if (t.size() <= skip_prefix || t.substr(0, skip_prefix) != kWordPiecePrefix) continue;
        t = t.substr(skip_prefix);
      }
      const uint64_t h = BpeWordCache::hash_of(t);
      size_t i = h & mask_;
      while (slots_[i].hash != 0) i = (i + 1) & mask_;
      slots_[i] = Slot{h, id, t};
      max_len_ = std::max(max_len_, t.size());
    }
  }
  std::optional<uint32_t> find(std::string_view key) const {
    const uint64_t h = BpeWordCache::hash_of(key);
    for (size_t i = h & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.hash == 0) return std::nullopt;
      if (s.hash == h && s.key == key) return s.id;
    }
  }
  size_t max_len() const { return max_len_; }

 private:
  struct Slot {
    uint64_t hash;   // 0: empty (hash_of is never 0)
    uint32_t id;
    std::string_view key;
  };
  std::vector<Slot> slots_;
  size_t mask_ = 0;
  size_t max_len_ = 0;
};

bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

size_t char_count(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += !is_continuation(c);
  return n;
}

}  // namespace

struct WordPieceTokenizer::Impl {
  Impl(std::vector<std::string> t, const WordPieceOptions& o, std::string_view source);
  std::vector<std::string> tokens;
  WordPieceOptions opt;
  BertBasicTokenizer basic;
  TokenIndex whole;          // every token
  TokenIndex continuation;   // "##x" tokens, keyed by x
  uint32_t special[5];       // pad, unk, cls, sep, mask
  uint64_t fingerprint;
};

WordPieceTokenizer::Impl::Impl(std::vector<std::string> t, const WordPieceOptions& o, std::string_view source)
    : tokens(std::move(t)), opt(o), basic(o) {
  LOOM_CHECK(opt.max_input_chars_per_word > 0, ConfigError,
             "WordPiece: max_input_chars_per_word must be at least 1");
  whole.build(tokens, 0, false);
  continuation.build(tokens, kWordPiecePrefix.size(), true);
  for (uint32_t id = 0; id < tokens.size(); ++id) {
    const std::string where = std::string(source) + ":" + std::to_string(id + 1);
    LOOM_CHECK(!tokens[id].empty(), DataError, where + ": an empty token (every line of vocab.txt is one token)");
    const std::optional<uint32_t> first = whole.find(tokens[id]);
    LOOM_CHECK(first == id, DataError,
               where + ": duplicate token \"" + tokens[id] + "\" (first at line " +
                   std::to_string(first.value_or(0) + 1) + ")");
  }
  for (size_t s = 0; s < 5; ++s) {
    const std::optional<uint32_t> id = whole.find(kWordPieceSpecials[s]);
    LOOM_CHECK(id.has_value(), DataError,
               std::string(source) + ": the special token " + std::string(kWordPieceSpecials[s]) +
                   " is missing (BERT's vocab.txt has [PAD] [UNK] [CLS] [SEP] [MASK])");
    special[s] = *id;
  }
  Fingerprint fp("wordpiece");
  fp.add_u64(opt.lowercase);
  fp.add_u64(opt.strips());
  fp.add_u64(opt.tokenize_chinese_chars);
  fp.add_u64(opt.max_input_chars_per_word);
  fp.add_u64(tokens.size());
  for (const std::string& tok : tokens) fp.add_bytes(tok);
  fingerprint = fp.value();
}

WordPieceTokenizer::WordPieceTokenizer(std::vector<std::string> tokens, const WordPieceOptions& opt,
                                       std::string_view source)
    : impl_(std::make_unique<Impl>(std::move(tokens), opt, source)) {}
WordPieceTokenizer::WordPieceTokenizer(WordPieceTokenizer&&) noexcept = default;
WordPieceTokenizer& WordPieceTokenizer::operator=(WordPieceTokenizer&&) noexcept = default;
WordPieceTokenizer::~WordPieceTokenizer() = default;

WordPieceTokenizer WordPieceTokenizer::parse(std::string_view text, const WordPieceOptions& opt,
                                             std::string_view source) {
  std::vector<std::string> tokens;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string_view::npos) nl = text.size();
    std::string_view line = text.substr(pos, nl - pos);
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
      line.remove_suffix(1);   // HF trims the end of each line
    tokens.emplace_back(line);
    pos = nl + 1;
  }
  return WordPieceTokenizer(std::move(tokens), opt, source);
}

WordPieceTokenizer WordPieceTokenizer::load(const std::string& path, const WordPieceOptions& opt) {
  std::ifstream in(path, std::ios::binary);
  LOOM_CHECK(in.good(), IoError, "cannot read the WordPiece vocabulary " + path + ": " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  LOOM_CHECK(!in.bad(), IoError, "error reading " + path);
  return parse(text.str(), opt, path);
}

size_t WordPieceTokenizer::vocab_size() const { return impl_->tokens.size(); }
const std::vector<std::string>& WordPieceTokenizer::tokens() const { return impl_->tokens; }
const WordPieceOptions& WordPieceTokenizer::options() const { return impl_->opt; }
uint64_t WordPieceTokenizer::fingerprint() const { return impl_->fingerprint; }
std::optional<uint32_t> WordPieceTokenizer::token_id(std::string_view token) const {
  return impl_->whole.find(token);
}
std::string_view WordPieceTokenizer::token(uint32_t id) const {
  LOOM_ASSERT(id < vocab_size());
  return impl_->tokens[id];
}
uint32_t WordPieceTokenizer::pad_id() const { return impl_->special[0]; }
uint32_t WordPieceTokenizer::unk_id() const { return impl_->special[1]; }
uint32_t WordPieceTokenizer::cls_id() const { return impl_->special[2]; }
uint32_t WordPieceTokenizer::sep_id() const { return impl_->special[3]; }
uint32_t WordPieceTokenizer::mask_id() const { return impl_->special[4]; }

std::vector<uint32_t> WordPieceTokenizer::encode(std::string_view text, const TokenizeOptions& opt) const {
  std::vector<uint32_t> ids;
  WordPieceEncoder(*this, size_t{1} << 10).encode(text, ids, opt);
  return ids;
}

void WordPieceTokenizer::encode_documents(std::span<const std::string_view> docs, std::vector<uint32_t>& out,
                                          const TokenizeOptions& opt) const {
  const size_t parts = std::clamp<size_t>(static_cast<size_t>(std::max(opt.threads, 1)), 1,
                                          std::max<size_t>(docs.size(), 1));
  if (parts == 1) {
    WordPieceEncoder(*this).encode_documents(docs, out, opt);
    return;
  }
  std::vector<std::vector<uint32_t>> ids(parts);   // (parts) each block's ids
  std::vector<std::exception_ptr> errors(parts);
  auto block = [&](size_t p) { return std::pair(docs.size() * p / parts, docs.size() * (p + 1) / parts); };
  auto run = [&](size_t p) {
    try {
      const auto [begin, end] = block(p);
      WordPieceEncoder(*this).encode_documents(docs.subspan(begin, end - begin), ids[p], opt);
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
  for (size_t p = 0; p < parts; ++p) {
    const auto [begin, end] = block(p);
    if (begin < end && begin > 0) out.push_back(sep_id());   // between the blocks' documents
    out.insert(out.end(), ids[p].begin(), ids[p].end());
  }
}

std::string WordPieceTokenizer::decode(std::span<const uint32_t> ids) const {
  // HF's WordPiece decoder with cleanup: per token, then the cleanup replacements on it.
  static const std::pair<std::string_view, std::string_view> kCleanup[] = {
      {" .", "."}, {" ?", "?"}, {" !", "!"}, {" ,", ","}, {" ' ", "'"}, {" n't", "n't"},
      {" 'm", "'m"}, {" do not", " don't"}, {" 's", "'s"}, {" 've", "'ve"}, {" 're", "'re"}};
  std::string out, piece;
  const size_t size = vocab_size();
  for (size_t i = 0; i < ids.size(); ++i) {
    LOOM_CHECK(ids[i] < size, DataError,
               "decode: id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                   " is outside the vocabulary (" + std::to_string(size) + " tokens)");
    const std::string_view t = impl_->tokens[ids[i]];
    if (i == 0) piece.assign(t);
    else if (t.starts_with(kWordPiecePrefix)) piece.assign(t.substr(kWordPiecePrefix.size()));
    else piece.assign(" ").append(t);
    for (const auto& [from, to] : kCleanup) {
      for (size_t at = piece.find(from); at != std::string::npos; at = piece.find(from, at + to.size()))
        piece.replace(at, from.size(), to);
    }
    out += piece;
  }
  return out;
}

std::string format_vocab_txt(std::span<const std::string> tokens) {
  std::string text;
  for (const std::string& t : tokens) text.append(t).push_back('\n');
  return text;
}

void WordPieceTokenizer::save(const std::string& path) const {
  write_file_atomically(path, format_vocab_txt(impl_->tokens));
}

// ---- encoder -------------------------------------------------------------------------

struct WordPieceEncoder::State {
  explicit State(size_t cache_words) : cache(cache_words) {}
  BpeWordCache cache;
  std::string word;              // the basic tokenizer's current word
  std::vector<uint32_t> pieces;  // one word's ids
  std::string replaced;          // the text with U+FFFD for invalid UTF-8 (kReplace)
};

WordPieceEncoder::WordPieceEncoder(const WordPieceTokenizer& tokenizer, size_t cache_words)
    : tok_(tokenizer.impl_.get()), state_(std::make_unique<State>(cache_words)) {}
WordPieceEncoder::WordPieceEncoder(WordPieceEncoder&&) noexcept = default;
WordPieceEncoder::~WordPieceEncoder() = default;

void WordPieceEncoder::encode_word(std::string_view word, std::vector<uint32_t>& out) {
  const WordPieceTokenizer::Impl& t = *tok_;
  if (word.size() > t.opt.max_input_chars_per_word && char_count(word) > t.opt.max_input_chars_per_word) {
    out.push_back(t.special[1]);
    return;
  }
  constexpr size_t kCachedBytes = 64;   // longer words are rare; not worth the memory
  const bool cacheable = word.size() <= kCachedBytes;
  const uint64_t hash = cacheable ? BpeWordCache::hash_of(word) : 0;
  if (cacheable) {
    const std::span<const uint32_t> ids = state_->cache.find(word, hash);
    if (!ids.empty()) {
      out.insert(out.end(), ids.begin(), ids.end());
      return;
    }
  }
  // Greedy longest match first (HF's WordPiece): candidates end on character boundaries,
  // never longer than the longest token of their table.
  std::vector<uint32_t>& pieces = state_->pieces;
  pieces.clear();
  size_t start = 0;
  while (start < word.size()) {
    const TokenIndex& index = start == 0 ? t.whole : t.continuation;
    size_t end = std::min(word.size(), start + index.max_len());
    while (end < word.size() && is_continuation(static_cast<unsigned char>(word[end]))) --end;
    std::optional<uint32_t> id;
    while (end > start) {
      id = index.find(word.substr(start, end - start));
      if (id) break;
      do --end;
      while (end > start && is_continuation(static_cast<unsigned char>(word[end])));
    }
    if (!id) {   // no token covers the rest: the whole word is unknown
      pieces.assign(1, t.special[1]);
      break;
    }
    pieces.push_back(*id);
    start = end;
  }
  out.insert(out.end(), pieces.begin(), pieces.end());
  if (cacheable) state_->cache.insert(word, hash, pieces);
}

void WordPieceEncoder::encode(std::string_view text, std::vector<uint32_t>& out, const TokenizeOptions& opt) {
  if (opt.invalid_utf8 == InvalidUtf8::kKeepBytes)
    throw ConfigError("the WordPiece tokenizer cannot keep invalid UTF-8 bytes (" + std::string(opt.source) +
                      "); choose error or replace");
  text = apply_utf8_policy(text, opt.invalid_utf8, opt.source, opt.source_offset, state_->replaced);
  tok_->basic.split(text, state_->word, [&](std::string_view word) { encode_word(word, out); });
}

void WordPieceEncoder::encode_documents(std::span<const std::string_view> docs, std::vector<uint32_t>& out,
                                        const TokenizeOptions& opt) {
  for (size_t d = 0; d < docs.size(); ++d) {
    if (d > 0) out.push_back(tok_->special[3]);
    encode(docs[d], out, opt);
  }
}

}  // namespace loom
