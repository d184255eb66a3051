#include "io/bpe_tokenizer.h"

#include <algorithm>
#include <exception>
#include <thread>

#include "core/error.h"
#include "io/bpe_merge.h"
#include "io/bpe_word_cache.h"

namespace loom {

struct BpeTokenizer::Impl {
  explicit Impl(BpeVocab v);
  BpeVocab vocab;
  BpeMergeTable merges;
  uint32_t byte_id[256];                 // the single-byte token of each byte
  std::vector<uint64_t> token_begin;     // (V + 1) offsets of each token's bytes in blob
  std::string blob;                      // every token's bytes, by id
  std::vector<std::pair<std::string, uint32_t>> specials;   // longest text first
  uint64_t fingerprint;

  std::optional<uint32_t> special_id(std::string_view text) const {
    for (const auto& [t, id] : specials)
      if (t == text) return id;
    return std::nullopt;
  }
  uint32_t eot_id() const {
    std::optional<uint32_t> id = special_id(kEndOfText);
    LOOM_CHECK(id.has_value(), DataError,
               "the BPE vocabulary has no special token " + std::string(kEndOfText) +
                   " (needed between documents); add it to vocab.json");
    return *id;
  }
};

BpeTokenizer::Impl::Impl(BpeVocab v)
    : vocab(std::move(v)), merges(vocab.merges), fingerprint(bpe_fingerprint(vocab)) {
  LOOM_ASSERT(vocab.special.size() == vocab.tokens.size());
  std::fill(std::begin(byte_id), std::end(byte_id), 0xFFFFFFFFu);
  token_begin.reserve(vocab.tokens.size() + 1);
  for (uint32_t id = 0; id < vocab.tokens.size(); ++id) {
    const std::string& t = vocab.tokens[id];
    token_begin.push_back(blob.size());
    blob += t;
    if (vocab.special[id])
      specials.emplace_back(t, id);
    else if (t.size() == 1)
      byte_id[static_cast<unsigned char>(t[0])] = id;
  }
  token_begin.push_back(blob.size());
  for (int b = 0; b < 256; ++b)
    LOOM_CHECK(byte_id[b] != 0xFFFFFFFFu, DataError,
               "BPE vocabulary has no token for the single byte " + std::to_string(b) +
                   "; a byte-level vocabulary needs all 256");
  for (const BpeMerge& m : vocab.merges)
    LOOM_CHECK(m.left < vocab.tokens.size() && m.right < vocab.tokens.size() &&
                   m.result < vocab.tokens.size(),
               DataError, "BPE merge refers to an id outside the vocabulary");
  std::stable_sort(specials.begin(), specials.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

BpeTokenizer::BpeTokenizer(BpeVocab vocab) : impl_(std::make_unique<Impl>(std::move(vocab))) {}
BpeTokenizer::BpeTokenizer(BpeTokenizer&&) noexcept = default;
BpeTokenizer& BpeTokenizer::operator=(BpeTokenizer&&) noexcept = default;
BpeTokenizer::~BpeTokenizer() = default;

BpeTokenizer BpeTokenizer::load(const std::string& vocab_json_path,
                                const std::string& merges_txt_path,
                                std::span<const std::string_view> special_tokens) {
  return BpeTokenizer(read_bpe_files(vocab_json_path, merges_txt_path, special_tokens));
}

size_t BpeTokenizer::vocab_size() const { return impl_->vocab.tokens.size(); }
const BpeVocab& BpeTokenizer::vocab() const { return impl_->vocab; }
uint64_t BpeTokenizer::fingerprint() const { return impl_->fingerprint; }

std::optional<uint32_t> BpeTokenizer::special_id(std::string_view text) const {
  return impl_->special_id(text);
}
uint32_t BpeTokenizer::eot_id() const { return impl_->eot_id(); }

std::string_view BpeTokenizer::token_bytes(uint32_t id) const {
  LOOM_ASSERT(id < vocab_size());
  return std::string_view(impl_->blob).substr(
      impl_->token_begin[id], impl_->token_begin[id + 1] - impl_->token_begin[id]);
}

std::vector<uint32_t> BpeTokenizer::encode(std::string_view text,
                                           const BpeEncodeOptions& opt) const {
  std::vector<uint32_t> ids;
  BpeEncoder(*this).encode(text, ids, opt);
  return ids;
}

void BpeTokenizer::decode_append(std::span<const uint32_t> ids, std::string& out) const {
  const size_t size = vocab_size();
  for (size_t i = 0; i < ids.size(); ++i) {
    LOOM_CHECK(ids[i] < size, DataError,
               "decode: id " + std::to_string(ids[i]) + " at position " + std::to_string(i) +
                   " is outside the vocabulary (" + std::to_string(size) + " tokens)");
    out += token_bytes(ids[i]);
  }
}

std::string BpeTokenizer::decode(std::span<const uint32_t> ids) const {
  std::string out;
  decode_append(ids, out);
  return out;
}

// ---- encoder -------------------------------------------------------------------------

struct BpeEncoder::State {
  explicit State(size_t cache_words) : cache(cache_words) {}
  BpeWordCache cache;
  std::vector<uint32_t> word;   // the piece being merged
  BpeWordMerger merger;
};

BpeEncoder::BpeEncoder(const BpeTokenizer& tokenizer, size_t cache_words)
    : tok_(tokenizer.impl_.get()), state_(std::make_unique<State>(cache_words)) {}
BpeEncoder::BpeEncoder(BpeEncoder&&) noexcept = default;
BpeEncoder::~BpeEncoder() = default;

void BpeEncoder::encode_piece(std::string_view piece, std::vector<uint32_t>& out) {
  if (piece.size() == 1) {
    out.push_back(tok_->byte_id[static_cast<unsigned char>(piece[0])]);
    return;
  }
  State& s = *state_;
  constexpr size_t kCachedBytes = 128;   // longer pieces are rare; not worth the memory
  const bool cacheable = piece.size() <= kCachedBytes;
  const uint64_t hash = cacheable ? BpeWordCache::hash_of(piece) : 0;
  if (cacheable) {
    std::span<const uint32_t> ids = s.cache.find(piece, hash);
    if (!ids.empty()) {
      out.insert(out.end(), ids.begin(), ids.end());
      return;
    }
  }
  s.word.clear();
  for (unsigned char b : piece) s.word.push_back(tok_->byte_id[b]);
  s.merger.merge(tok_->merges, s.word);
  out.insert(out.end(), s.word.begin(), s.word.end());
  if (cacheable) s.cache.insert(piece, hash, s.word);
}

void BpeEncoder::encode_plain(std::string_view text, uint64_t offset, std::vector<uint32_t>& out,
                              const BpeEncodeOptions& opt) {
  std::string replaced;
  text = apply_utf8_policy(text, opt.invalid_utf8, opt.source, offset, replaced);
  Gpt2PreTokenizer pre(text);
  std::string_view piece;
  while (pre.next(piece)) encode_piece(piece, out);
}

void BpeEncoder::encode(std::string_view text, std::vector<uint32_t>& out,
                        const BpeEncodeOptions& opt) {
  if (!opt.allow_special || tok_->specials.empty()) {
    encode_plain(text, opt.source_offset, out, opt);
    return;
  }
  // Split at the earliest special-token text (the longest where several start there).
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t best = std::string_view::npos;
    uint32_t best_id = 0;
    size_t best_len = 0;
    for (const auto& [t, id] : tok_->specials) {
      size_t at = text.find(t, pos);
      if (at < best) {
        best = at;
        best_id = id;
        best_len = t.size();
      }
    }
    const size_t stop = best == std::string_view::npos ? text.size() : best;
    encode_plain(text.substr(pos, stop - pos), opt.source_offset + pos, out, opt);
    if (best == std::string_view::npos) break;
    out.push_back(best_id);
    pos = best + best_len;
  }
}

void BpeEncoder::encode_documents(std::span<const std::string_view> docs,
                                  std::vector<uint32_t>& out, const BpeEncodeOptions& opt) {
  if (docs.empty()) return;
  const uint32_t eot = tok_->eot_id();
  for (size_t d = 0; d < docs.size(); ++d) {
    if (d > 0) out.push_back(eot);
    encode(docs[d], out, opt);
  }
}

std::vector<uint32_t> encode_documents_parallel(const BpeTokenizer& tokenizer,
                                                std::span<const std::string_view> docs,
                                                int threads, const BpeEncodeOptions& opt) {
  const size_t parts = std::clamp<size_t>(static_cast<size_t>(std::max(threads, 1)), 1,
                                          std::max<size_t>(docs.size(), 1));
  std::vector<std::vector<uint32_t>> ids(parts);   // (parts) each block's ids
  std::vector<std::exception_ptr> errors(parts);
  auto run = [&](size_t p) {
    try {
      const size_t begin = docs.size() * p / parts, end = docs.size() * (p + 1) / parts;
      BpeEncoder(tokenizer).encode_documents(docs.subspan(begin, end - begin), ids[p], opt);
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
  const uint32_t eot = parts > 1 ? tokenizer.eot_id() : 0;
  std::vector<uint32_t> out = std::move(ids[0]);
  for (size_t p = 1; p < parts; ++p) {
    const size_t begin = docs.size() * p / parts, end = docs.size() * (p + 1) / parts;
    if (begin < end && begin > 0) out.push_back(eot);   // between the blocks' documents
    out.insert(out.end(), ids[p].begin(), ids[p].end());
  }
  return out;
}

}  // namespace loom
