// The token stage (token_stage.h, Note [Token stage]): documents, tokenization by rank,
// the manifest, reuse; and the collective vocabulary learning of `loom tokenizer train`.
#include "launch/pipeline/token_stage.h"

#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <exception>
#include <filesystem>
#include <sstream>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "core/work_meter.h"
#include "core/measure.h"
#include "dist/communicator.h"
#include "dist/mpi_communicator.h"
#include "io/bpe_files.h"
#include "io/bpe_tokenizer.h"
#include "io/char_tokenizer.h"
#include "io/corpus_shard.h"
#include "io/text_source.h"
#include "io/sentence_split.h"
#include "io/wordpiece.h"
#include "io/wordpiece_train.h"
#include "launch/config/config.h"
#include "launch/kinds/tokens.h"
#include "launch/pipeline/model_registry.h"
#include "launch/pipeline/pipeline_data.h"
#include "launch/pipeline/run_report.h"
#include "launch/run/session.h"

namespace loom {
namespace {

namespace fs = std::filesystem;

constexpr size_t kReadBlock = size_t{4} << 20;
constexpr size_t kBatchBytes = size_t{8} << 20;
constexpr const char* kManifestHeader = "# loom-token-manifest 1";

// ---- documents ------------------------------------------------------------------------

// Streams the documents of one file that start in local bytes [lo, hi) (Note [Token stage]).
// Returns true when it met a document starting at or past hi (the caller stops there).
class FileDocuments {
 public:
  FileDocuments(const CorpusFile& file, DocumentMode mode, uint64_t lo, uint64_t hi, size_t batch_bytes,
                const std::function<void(const DocumentBatch&)>& emit)
      : file_(file), mode_(mode), lo_(lo), hi_(hi), batch_bytes_(batch_bytes), emit_(emit) {}

  bool run() {
    // Two bytes before lo decide whether a document starts at lo (the line before is empty).
    base_ = lo_ >= 2 ? lo_ - 2 : 0;
    std::unique_ptr<TextSource> src = open_text_source(file_.path);
    src->skip_to(base_);
    bool eof = false;
    while (!eof && !stop_) {
      const size_t old = buf_.size();
      buf_.resize(old + kReadBlock);
      const size_t n = src->read(buf_.data() + old, kReadBlock);
      buf_.resize(old + n);
      eof = n == 0;
      scan_lines(eof);
      if (eof && in_doc_ && owned_) push(doc_start_, doc_end_);
      if (eof || stop_ || pending_bytes_ >= batch_bytes_) flush();
      compact();
    }
    return stop_;
  }

 private:
  void scan_lines(bool eof) {
    while (!stop_ && scan_ < buf_.size()) {
      const void* nl = std::memchr(buf_.data() + scan_, '\n', buf_.size() - scan_);
      if (nl == nullptr && !eof) return;   // an incomplete line: wait for more bytes
      const size_t end = nl ? static_cast<size_t>(static_cast<const char*>(nl) - buf_.data()) : buf_.size();
      on_line(scan_, end);
      scan_ = end + 1;
    }
    scan_ = std::min(scan_, buf_.size());
  }

  void on_line(size_t begin, size_t end) {
    const bool blank = begin == end;
    const uint64_t at = base_ + begin;   // local offset of the line
    if (mode_ == DocumentMode::kLine) {
      if (blank) return;
      if (at >= hi_) { stop_ = true; return; }
      if (at >= lo_) push(begin, end);
      return;
    }
    if (in_doc_) {
      if (blank) {
        if (owned_) push(doc_start_, doc_end_);
        in_doc_ = false;
      } else {
        doc_end_ = end;
      }
    } else if (!blank && prev_blank_) {
      if (at >= hi_) { stop_ = true; return; }
      in_doc_ = true;
      owned_ = at >= lo_;
      doc_start_ = begin;
      doc_end_ = end;
    }
    prev_blank_ = blank;
  }

  void push(size_t begin, size_t end) {
    docs_.emplace_back(begin, end);
    pending_bytes_ += end - begin;
  }

  void flush() {
    if (docs_.empty()) return;
    std::vector<std::string_view> views;
    views.reserve(docs_.size());
    for (const auto& [b, e] : docs_) views.emplace_back(buf_.data() + b, e - b);
    emit_(DocumentBatch{views, &file_.path, base_ + docs_.front().first});
    docs_.clear();
    pending_bytes_ = 0;
  }

  // Drops the bytes nobody needs any more (before the open document or the next line).
  void compact() {
    size_t keep = scan_;
    if (in_doc_ && owned_) keep = std::min(keep, doc_start_);
    if (!docs_.empty()) keep = std::min(keep, docs_.front().first);
    if (keep == 0) return;
    buf_.erase(0, keep);
    base_ += keep;
    scan_ -= keep;
    // An unowned document's bounds are never used again; an owned one's are >= keep.
    if (in_doc_ && owned_) { doc_start_ -= keep; doc_end_ -= keep; }
    for (auto& [b, e] : docs_) { b -= keep; e -= keep; }
  }

  const CorpusFile& file_;
  DocumentMode mode_;
  uint64_t lo_, hi_;
  size_t batch_bytes_;
  const std::function<void(const DocumentBatch&)>& emit_;
  std::string buf_;
  uint64_t base_ = 0;            // local offset of buf_[0]
  size_t scan_ = 0;              // next line start in buf_
  bool prev_blank_ = true;       // the first line of a file has no line before it
  bool in_doc_ = false, owned_ = false, stop_ = false;
  size_t doc_start_ = 0, doc_end_ = 0;
  std::vector<std::pair<size_t, size_t>> docs_;   // complete documents not yet emitted
  size_t pending_bytes_ = 0;
};

std::string read_whole(const std::string& path, uint64_t size) {
  std::unique_ptr<TextSource> src = open_text_source(path);
  std::string text(size, '\0');
  size_t done = 0;
  while (done < text.size()) {
    const size_t n = src->read(text.data() + done, text.size() - done);
    if (n == 0) break;
    done += n;
  }
  text.resize(done);
  return text;
}

// ---- fingerprints and the manifest ----------------------------------------------------------

std::string corpus_files_fingerprint(const CorpusOptions& corpus) {
  std::string out;
  for (const std::string& path : resolve_corpus_paths(corpus.paths)) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw IoError("cannot stat corpus file " + path + ": " + std::strerror(errno));
    const int64_t mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
    out += "corpus.file = " + fs::absolute(path).lexically_normal().string() + " size=" +
           std::to_string(st.st_size) + " mtime_ns=" + std::to_string(mtime_ns) + "\n";
  }
  return out;
}

struct ManifestEntry {
  std::string name;
  uint64_t tokens = 0, documents = 0;
};

struct Manifest {
  std::string kind;
  uint64_t fingerprint = 0;
  uint64_t vocab_size = 0;
  std::vector<ManifestEntry> shards;
};

std::string format_manifest(const Manifest& m) {
  std::string out = std::string(kManifestHeader) + "\ntokenizer = " + m.kind + "\nfingerprint = " +
                    fingerprint_hex(m.fingerprint) + "\nvocab_size = " + std::to_string(m.vocab_size) + "\n";
  for (const ManifestEntry& e : m.shards)
    out += "shard = " + e.name + " tokens=" + std::to_string(e.tokens) + " documents=" + std::to_string(e.documents) + "\n";
  return out;
}

Manifest parse_manifest(const std::string& path) {
  const std::string text = read_text(path);
  LOOM_CHECK(!text.empty(), IoError, path + ": missing or empty; run `loom tokenize` again");
  std::istringstream in(text);
  std::string line;
  Manifest m;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    auto bad = [&] { return DataError(path + ":" + std::to_string(line_no) + ": unexpected \"" + line + "\""); };
    if (line_no == 1) {
      if (line != kManifestHeader) throw bad();
      continue;
    }
    char name[256];
    unsigned long long a = 0, b = 0;
    if (line.rfind("tokenizer = ", 0) == 0) {
      m.kind = line.substr(12);
    } else if (std::sscanf(line.c_str(), "fingerprint = %llx", &a) == 1) {
      m.fingerprint = a;
    } else if (std::sscanf(line.c_str(), "vocab_size = %llu", &a) == 1) {
      m.vocab_size = a;
    } else if (std::sscanf(line.c_str(), "shard = %255s tokens=%llu documents=%llu", name, &a, &b) == 3) {
      m.shards.push_back({name, a, b});
    } else {
      throw bad();
    }
  }
  LOOM_CHECK(line_no >= 1, DataError, path + ": not a loom token manifest");
  return m;
}

std::string part_name(int rank, int world) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "part-%05d-of-%05d.tokens", rank, world);
  return buf;
}

std::string resolve_dir(const std::string& dir, const std::string& run_dir) {
  if (dir.empty()) return run_dir + "/tokens";
  return fs::path(dir).is_absolute() ? dir : run_dir + "/" + dir;
}

InvalidUtf8 invalid_utf8_of(const TokensSection& t) {
  return t.invalid_utf8 == "replace" ? InvalidUtf8::kReplace : InvalidUtf8::kError;
}

// The global byte range whose documents rank r owns.
std::pair<uint64_t, uint64_t> rank_range(uint64_t total, int rank, int world) {
  // floor(total * r / W) without overflow: total = q W + m, so it is q r + floor(m r / W).
  const uint64_t w = static_cast<uint64_t>(world), q = total / w, m = total % w;
  auto at = [&](uint64_t r) { return q * r + m * r / w; };
  return {at(static_cast<uint64_t>(rank)), at(static_cast<uint64_t>(rank) + 1)};
}

// ---- the tokenizer ----------------------------------------------------------------------

struct TokenizerChoice {
  std::shared_ptr<const Tokenizer> tokenizer;   // null: a char vocabulary still to learn
  std::string learned_path;                     // where a vocabulary learned from the corpus goes
  std::string identity;                         // the fingerprint's tokenizer lines
};

TokenizerChoice choose_tokenizer(const TokensSection& t, const std::string& dir) {
  TokenizerChoice c;
  if (t.tokenizer == "bpe") {
    const std::vector<std::string> paths = {t.vocab, t.merges};
    c.tokenizer = load_tokenizer("bpe", paths);
  } else if (t.tokenizer == "wordpiece") {
    if (t.vocab.empty()) {   // learned from the corpus into DIR/vocab.txt (tokens.vocab_size tokens)
      c.learned_path = dir + "/" + std::string(kWordPieceVocabFile);
    } else {
      const std::vector<std::string> paths = {t.vocab};
      TokenizerLoadOptions opt;
      opt.lowercase = t.lowercase;
      c.tokenizer = load_tokenizer("wordpiece", paths, opt);
    }
  } else {
    c.learned_path = t.vocab.empty() ? dir + "/" + std::string(kCharVocabFile) : t.vocab;
    if (!t.vocab.empty() && fs::exists(t.vocab)) {
      const std::vector<std::string> paths = {t.vocab};
      c.tokenizer = load_tokenizer("char", paths);
    }
  }
  c.identity = "tokens.tokenizer = " + t.tokenizer + "\n";
  c.identity += c.tokenizer ? "tokenizer.fingerprint = " + fingerprint_hex(c.tokenizer->fingerprint()) + "\n"
                            : "tokenizer.learned_from_corpus = " + c.learned_path + "\n" +
                                  (t.tokenizer == "wordpiece" ? "tokens.vocab_size = " + std::to_string(t.vocab_size) +
                                                                    "\ntokens.min_frequency = " +
                                                                    std::to_string(t.min_frequency) +
                                                                    "\ntokens.lowercase = " +
                                                                    (t.lowercase ? "true\n" : "false\n")
                                                              : "");
  return c;
}

// ---- tokenizing one rank's part ------------------------------------------------------------

struct PartStats {
  uint64_t tokens = 0, documents = 0, bytes = 0;
};

// Note [Token layouts], kSentences: the batch's sentences are encoded as one list of
// "documents" (so on opt.threads threads, joined by [SEP]: WordPiece never makes [SEP] from
// text), then regrouped: each non-empty sentence's ids and [SEP], [CLS] after each document
// that kept a sentence. Returns the documents kept.
uint64_t encode_sentence_documents(const Tokenizer& tok, const DocumentBatch& batch, TokenizeOptions opt,
                                   std::vector<std::string_view>& sentences, std::vector<size_t>& per_doc,
                                   std::vector<uint32_t>& scratch, std::vector<uint32_t>& out) {
  const uint32_t sep = *tok.special_id("[SEP]"), cls = *tok.special_id("[CLS]");
  sentences.clear();
  per_doc.clear();
  for (std::string_view d : batch.docs) {
    const size_t before = sentences.size();
    split_sentences(d, sentences);
    per_doc.push_back(sentences.size() - before);
  }
  if (sentences.empty()) return 0;
  opt.source_offset = batch.offset + uint64_t(sentences.front().data() - batch.docs.front().data());
  scratch.clear();
  tok.encode_documents(sentences, "", scratch, opt);
  size_t at = 0;
  uint64_t kept_docs = 0;
  for (size_t count : per_doc) {
    bool kept = false;
    for (size_t k = 0; k < count; ++k) {
      const size_t from = at;
      while (at < scratch.size() && scratch[at] != sep) ++at;
      if (at > from) {
        out.insert(out.end(), scratch.begin() + std::ptrdiff_t(from), scratch.begin() + std::ptrdiff_t(at));
        out.push_back(sep);
        kept = true;
      }
      ++at;   // past this sentence's [SEP] (or the end)
    }
    if (kept) {
      out.push_back(cls);
      ++kept_docs;
    }
  }
  return kept_docs;
}

PartStats tokenize_part(const Tokenizer& tok, const CorpusLayout& layout, DocumentMode mode, InvalidUtf8 policy,
                        uint64_t begin, uint64_t end, int threads, const std::string& path, TokenLayout token_layout) {
  TokenShardWriter writer(path, static_cast<uint32_t>(tok.vocab_size()), tok.fingerprint());
  const std::string_view sep_text = document_separator(mode);
  const std::vector<uint32_t> sep = tok.separator_ids(sep_text);
  PartStats stats;
  std::vector<uint32_t> ids, scratch;
  std::vector<std::string_view> sentences;
  std::vector<size_t> per_doc;
  read_documents(layout, mode, begin, end, kBatchBytes, [&](const DocumentBatch& batch) {
    TokenizeOptions opt;
    opt.invalid_utf8 = policy;
    opt.source = *batch.file;
    opt.source_offset = batch.offset;
    opt.threads = threads;
    ids.clear();
    uint64_t docs = batch.docs.size();
    if (token_layout == TokenLayout::kSentences) {
      docs = encode_sentence_documents(tok, batch, opt, sentences, per_doc, scratch, ids);
    } else {
      tok.encode_documents(batch.docs, sep_text, ids, opt);
      ids.insert(ids.end(), sep.begin(), sep.end());   // every document is followed by SEP
    }
    writer.append(ids);
    writer.add_documents(docs);
    stats.documents += docs;
    for (std::string_view d : batch.docs) stats.bytes += d.size();
  });
  stats.tokens = writer.token_count();
  writer.commit();
  return stats;
}

void remove_other_parts(const std::string& dir, const Manifest& keep) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("part-", 0) != 0 || !name.ends_with(".tokens")) continue;
    const bool listed = std::any_of(keep.shards.begin(), keep.shards.end(),
                                    [&](const ManifestEntry& e) { return e.name == name; });
    if (!listed) fs::remove(entry.path(), ec);
  }
}

// Every rank: its part; rank 0: the manifest. Returns the manifest on every rank.
Manifest write_parts(Communicator& comm, const Tokenizer& tok, const CorpusLayout& layout, const TokensSection& t,
                     const std::string& dir, int threads, TokenLayout token_layout, double* mb_per_s) {
  const int rank = comm.rank(), world = comm.size();
  const auto t0 = SteadyClock::now();
  const auto [begin, end] = rank_range(layout.total_bytes(), rank, world);
  const PartStats mine = tokenize_part(tok, layout, document_mode(t.documents), invalid_utf8_of(t), begin, end,
                                       threads, dir + "/" + part_name(rank, world), token_layout);
  std::vector<int64_t> all(3 * static_cast<size_t>(world), 0);   // (W, 3) tokens, documents, bytes
  all[3 * rank] = static_cast<int64_t>(mine.tokens);
  all[3 * rank + 1] = static_cast<int64_t>(mine.documents);
  all[3 * rank + 2] = static_cast<int64_t>(mine.bytes);
  comm.allreduce(Tensor::of(all.data(), static_cast<int64_t>(all.size())), {ReduceOp::kSum});
  Manifest m{std::string(tok.kind()), tok.fingerprint(), tok.vocab_size(), {}};
  uint64_t bytes = 0;
  for (int r = 0; r < world; ++r) {
    m.shards.push_back({part_name(r, world), static_cast<uint64_t>(all[3 * r]), static_cast<uint64_t>(all[3 * r + 1])});
    bytes += static_cast<uint64_t>(all[3 * r + 2]);
  }
  *mb_per_s = static_cast<double>(bytes) / std::max(seconds_since(t0), 1e-9) / 1e6;
  return m;
}

}  // namespace

// ---- public ---------------------------------------------------------------------------------

DocumentMode document_mode(std::string_view name) {
  if (name == "blank_line") return DocumentMode::kBlankLine;
  if (name == "line") return DocumentMode::kLine;
  if (name == "file") return DocumentMode::kFile;
  throw ConfigError("tokens.documents = \"" + std::string(name) + "\"; expected blank_line, line or file");
}

std::string_view document_separator(DocumentMode mode) {
  switch (mode) {
    case DocumentMode::kBlankLine: return "\n\n";
    case DocumentMode::kLine: return "\n";
    case DocumentMode::kFile: return "";
  }
  return "";
}

void read_documents(const CorpusLayout& layout, DocumentMode mode, uint64_t begin, uint64_t end,
                    size_t batch_bytes, const std::function<void(const DocumentBatch&)>& emit) {
  // The work meter (core/work_meter.h): the range's bytes, credited a batch's documents at a
  // time and the rest of a file when it is done (separators, a file another rank owns).
  work_meter::add_total(static_cast<int64_t>(end > begin ? end - begin : 0));
  for (const CorpusFile& f : layout.files()) {
    if (f.begin >= end) break;
    if (f.size == 0 || f.begin + f.size <= begin) continue;
    const int64_t owned = static_cast<int64_t>(std::min(end, f.begin + f.size) - std::max(begin, f.begin));
    if (mode == DocumentMode::kFile) {
      if (f.begin >= begin) {   // else owned by the rank whose range holds the file's start
        const std::string text = read_whole(f.path, f.size);
        const std::string_view doc(text);
        emit(DocumentBatch{{&doc, 1}, &f.path, 0});
      }
      work_meter::advance(owned);
      continue;
    }
    int64_t credited = 0;
    const auto metered = [&](const DocumentBatch& batch) {
      emit(batch);
      int64_t bytes = 0;
      for (std::string_view d : batch.docs) bytes += static_cast<int64_t>(d.size());
      bytes = std::min(bytes, owned - credited);
      credited += bytes;
      work_meter::advance(bytes);
    };
    const uint64_t lo = begin > f.begin ? begin - f.begin : 0;
    const bool last = FileDocuments(f, mode, lo, end - f.begin, batch_bytes, metered).run();
    work_meter::advance(owned - credited);
    if (last) return;
  }
}

TokenSplits TokenData::windows(int64_t seq_len, uint64_t seed) const {
  return split_token_windows(stream, heldout_fraction, seq_len, seed);
}

std::shared_ptr<const TokenStream> open_token_shards(const std::string& dir, const Tokenizer& tokenizer) {
  const std::string path = dir + "/manifest.txt";
  const Manifest m = parse_manifest(path);
  LOOM_CHECK(m.fingerprint == tokenizer.fingerprint(), DataError,
             path + ": the shards were written by another tokenizer (" + m.kind + ", fingerprint " +
                 fingerprint_hex(m.fingerprint) + "; this one is " + tokenizer.describe() + "); tokenize again");
  std::vector<TokenShard> shards;
  for (const ManifestEntry& e : m.shards) {
    TokenShardCheck check;
    check.fingerprint = tokenizer.fingerprint();
    TokenShard s = TokenShard::open(dir + "/" + e.name, check);
    LOOM_CHECK(s.size() == e.tokens, DataError,
               s.path() + ": holds " + std::to_string(s.size()) + " tokens, " + path + " says " +
                   std::to_string(e.tokens) + "; tokenize again");
    shards.push_back(std::move(s));
  }
  return std::make_shared<const TokenStream>(std::move(shards));
}

TokenData token_stage(Communicator& comm, const Config& config, const std::string& run_dir, int threads,
                      TokenLayout layout) {
  const auto t0 = SteadyClock::now();
  const TokensSection& t = config.models.get<TokensSection>();
  TokenData data;
  data.dir = resolve_dir(t.dir, run_dir);
  data.heldout_fraction = t.heldout_fraction;
  if (comm.rank() == 0) fs::create_directories(data.dir);
  CorpusPlan corpus = prepare_corpus(comm, config, run_dir);   // barriers: the directory exists
  TokenizerChoice choice = choose_tokenizer(t, data.dir);
  const std::string fp_path = data.dir + "/tokens.fingerprint", manifest_path = data.dir + "/manifest.txt";
  std::string now, outputs_note;
  std::vector<std::string> outputs;
  if (comm.rank() == 0) {
    now = "# loom-fingerprint 1\n" + corpus_files_fingerprint(corpus.options) + choice.identity +
          "tokens.documents = " + t.documents + "\ntokens.invalid_utf8 = " + t.invalid_utf8 + "\n" +
          (layout == TokenLayout::kSentences ? "tokens.layout = sentences\n" : "");
    outputs.push_back(manifest_path);
    if (!choice.tokenizer) outputs.push_back(choice.learned_path);
    if (fs::exists(manifest_path)) {
      try {
        for (const ManifestEntry& e : parse_manifest(manifest_path).shards) outputs.push_back(data.dir + "/" + e.name);
      } catch (const Error&) {
        outputs.push_back(data.dir + "/(a readable manifest)");
      }
    }
  }
  const bool reuse = agree_on_reuse(comm, fp_path, now, outputs, "tokens");
  const DocumentMode mode = document_mode(t.documents);
  if (!choice.tokenizer && t.tokenizer == "wordpiece") {   // learned from the corpus (or reused with the shards)
    if (!reuse) {
      WordPieceOptions basic;
      basic.lowercase = t.lowercase;
      WordPieceTrainOptions opt;
      opt.vocab_size = static_cast<size_t>(t.vocab_size);
      opt.min_frequency = static_cast<uint64_t>(t.min_frequency);
      const CorpusLayout& corpus_layout = layout_of(comm, corpus);
      StageProgress progress(comm.rank(), "tokens", display_options(config));
      const std::vector<std::string> tokens =
          learn_wordpiece_vocab(comm, corpus_layout, mode, invalid_utf8_of(t), threads, basic, opt);
      if (comm.rank() == 0) WordPieceTokenizer(tokens, basic, choice.learned_path).save(choice.learned_path);
      comm.barrier();
      log::info("tokens", "learned " + std::to_string(tokens.size()) + " WordPiece tokens into " + choice.learned_path +
                              " (tokens.vocab is empty)");
    }
    const std::vector<std::string> paths = {choice.learned_path};
    TokenizerLoadOptions opt;
    opt.lowercase = t.lowercase;
    choice.tokenizer = load_tokenizer("wordpiece", paths, opt);
  }
  if (!choice.tokenizer) {   // a character vocabulary learned from the corpus (or reused with the shards)
    if (!reuse) {
      const CorpusLayout& corpus_layout = layout_of(comm, corpus);
      StageProgress progress(comm.rank(), "tokens", display_options(config));
      std::vector<uint32_t> cps = learn_char_vocab(comm, corpus_layout, mode, invalid_utf8_of(t));
      if (comm.rank() == 0) CharTokenizer(cps).save(choice.learned_path);
      comm.barrier();
      log::info("tokens", "learned " + std::to_string(cps.size()) + " characters into " + choice.learned_path);
    }
    const std::vector<std::string> paths = {choice.learned_path};
    choice.tokenizer = load_tokenizer("char", paths);
  }
  data.tokenizer = choice.tokenizer;
  LOOM_CHECK(layout != TokenLayout::kSentences ||
                 (data.tokenizer->special_id("[SEP]") && data.tokenizer->special_id("[CLS]")),
             ConfigError,
             "sentence pairs (BERT) need a WordPiece tokenizer with [CLS] and [SEP]: set tokens.tokenizer = "
             "\"wordpiece\" (it is \"" + t.tokenizer + "\")");
  double mb_per_s = 0;
  if (!reuse) {
    const CorpusLayout& corpus_layout = layout_of(comm, corpus);
    Manifest m;
    {
      StageProgress progress(comm.rank(), "tokens", display_options(config));
      m = write_parts(comm, *data.tokenizer, corpus_layout, t, data.dir, threads, layout, &mb_per_s);
    }
    if (comm.rank() == 0) {
      write_text_atomically(manifest_path, format_manifest(m));
      remove_other_parts(data.dir, m);
      write_text_atomically(fp_path, now);
    }
    comm.barrier();   // the manifest exists before any rank reads it
  }
  const Manifest m = parse_manifest(manifest_path);
  for (const ManifestEntry& e : m.shards) {
    data.shard_paths.push_back(data.dir + "/" + e.name);
    data.shard_tokens.push_back(e.tokens);
    data.tokens += e.tokens;
    data.documents += e.documents;
  }
  // A corpus of blank lines tokenizes to nothing: say so naming it, not what the empty shards
  // lack further on (a vocabulary, a held-out token).
  if (data.tokens == 0) {
    std::string files;
    for (const std::string& p : corpus.options.paths) files += (files.empty() ? "" : ", ") + p;
    throw DataError("the corpus (" + files + ") holds no token: it has blank lines only, or nothing the " +
                    "tokenizer keeps (check corpus.paths)");
  }
  data.stream = open_token_shards(data.dir, *data.tokenizer);
  data.time.reused = reuse;
  data.mb_per_s = mb_per_s;
  data.time.seconds = seconds_since(t0);
  log::info("tokens", std::string(reuse ? "reusing " : "wrote ") + std::to_string(m.shards.size()) + " shards in " +
                          data.dir + ": " + std::to_string(data.tokens) + " tokens, " + std::to_string(data.documents) +
                          " documents (" + data.tokenizer->describe() + ") in " + fixed(data.time.seconds, 2) + " s" +
                          (reuse ? "" : ", " + fixed(mb_per_s, 2) + " MB/s"));
  return data;
}

TokenData prepare_token_data(PipelineContext& ctx, TokenLayout layout) {
  Session& s = ctx.session;
  TokenData data = token_stage(s.comm(), s.config(), s.run_dir(), s.env().threads, layout);
  ctx.report.add_stage("tokens", data.time.seconds, data.time.reused);
  return data;
}

namespace {

// Collective: count_doc(document, table, options) over the documents of this rank's byte
// range on `threads` threads (one table each); the serialized tables gathered with
// allgatherv and summed exactly on rank 0 in rank order. Returns the sum on rank 0 (empty
// elsewhere): exact integers, so every world size gives rank 0 the same table.
using CountDocument = std::function<void(std::string_view, BpeWordCounts&, const TokenizeOptions&)>;
BpeWordCounts sum_word_counts(Communicator& comm, const CorpusLayout& layout, DocumentMode mode,
                              InvalidUtf8 invalid_utf8, int threads, const CountDocument& count_doc) {
  const auto [begin, end] = rank_range(layout.total_bytes(), comm.rank(), comm.size());
  const size_t parts = static_cast<size_t>(std::max(threads, 1));
  std::vector<BpeWordCounts> counts(parts);   // (threads) one table per thread, merged below
  read_documents(layout, mode, begin, end, kBatchBytes, [&](const DocumentBatch& batch) {
    std::vector<std::exception_ptr> errors(parts);
    auto run = [&](size_t p) {
      try {
        TokenizeOptions opt;
        opt.invalid_utf8 = invalid_utf8;
        opt.source = *batch.file;
        opt.source_offset = batch.offset;
        const size_t n = batch.docs.size();
        for (size_t d = n * p / parts; d < n * (p + 1) / parts; ++d) count_doc(batch.docs[d], counts[p], opt);
      } catch (...) {
        errors[p] = std::current_exception();
      }
    };
    std::vector<std::thread> pool;
    for (size_t p = 1; p < parts; ++p) pool.emplace_back(run, p);
    run(0);
    for (std::thread& th : pool) th.join();
    for (const std::exception_ptr& e : errors)
      if (e) std::rethrow_exception(e);
  });
  for (size_t p = 1; p < parts; ++p) merge_word_counts(counts[0], counts[p]);
  std::string mine = serialize_word_counts(counts[0]);
  counts.clear();
  const int world = comm.size();
  std::vector<int64_t> sizes(static_cast<size_t>(world), 0);
  sizes[static_cast<size_t>(comm.rank())] = static_cast<int64_t>(mine.size());
  comm.allreduce(Tensor::of(sizes.data(), world), {ReduceOp::kSum});
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  std::string all(static_cast<size_t>(total), '\0');
  comm.allgatherv(Tensor::of(reinterpret_cast<uint8_t*>(mine.data()), static_cast<int64_t>(mine.size())),
                  Tensor::of(reinterpret_cast<uint8_t*>(all.data()), total), sizes);
  BpeWordCounts merged;
  if (comm.rank() == 0) {
    int64_t at = 0;
    for (int r = 0; r < world; ++r) {
      deserialize_word_counts(std::string_view(all).substr(static_cast<size_t>(at), static_cast<size_t>(sizes[r])),
                              merged, "rank " + std::to_string(r) + "'s word counts");
      at += sizes[r];
    }
  }
  return merged;
}

// Collective: rank 0's files' text to every rank.
void broadcast_texts(Communicator& comm, std::span<std::string> files) {
  for (std::string& f : files) {
    int64_t n = static_cast<int64_t>(f.size());
    comm.broadcast(Tensor::of(&n, 1), 0);
    f.resize(static_cast<size_t>(n));
    comm.broadcast(Tensor::of(reinterpret_cast<uint8_t*>(f.data()), n), 0);
  }
}

}  // namespace

BpeVocab learn_bpe_vocab(Communicator& comm, const CorpusLayout& layout, DocumentMode mode, InvalidUtf8 invalid_utf8,
                         int threads, const BpeTrainOptions& options) {
  const CountDocument count = [](std::string_view doc, BpeWordCounts& counts, const TokenizeOptions& opt) {
    BpeCountOptions o;
    o.invalid_utf8 = opt.invalid_utf8;
    o.source = opt.source;
    o.source_offset = opt.source_offset;
    count_bpe_words(doc, counts, o);
  };
  const BpeWordCounts merged = sum_word_counts(comm, layout, mode, invalid_utf8, threads, count);
  std::string files[2];
  if (comm.rank() == 0) {
    log::info("tokenizer", std::to_string(merged.size()) + " distinct pieces counted; learning " +
                               std::to_string(options.vocab_size) + " tokens");
    const BpeVocab vocab = train_bpe(merged, options);
    files[0] = format_vocab_json(vocab);
    files[1] = format_merges_txt(vocab);
  }
  broadcast_texts(comm, files);   // every rank parses the same vocabulary
  return parse_bpe_files(files[0], files[1], kDefaultSpecials, "vocab.json", "merges.txt");
}

std::vector<std::string> learn_wordpiece_vocab(Communicator& comm, const CorpusLayout& layout, DocumentMode mode,
                                               InvalidUtf8 invalid_utf8, int threads, const WordPieceOptions& basic,
                                               const WordPieceTrainOptions& options) {
  const BertBasicTokenizer splitter(basic);
  const CountDocument count = [&splitter](std::string_view doc, BpeWordCounts& counts, const TokenizeOptions& opt) {
    count_wordpiece_words(splitter, doc, counts, opt);
  };
  const BpeWordCounts merged = sum_word_counts(comm, layout, mode, invalid_utf8, threads, count);
  std::string text[1];
  if (comm.rank() == 0) {
    log::info("tokenizer", std::to_string(merged.size()) + " distinct words counted; learning " +
                               std::to_string(options.vocab_size) + " WordPiece tokens");
    const std::vector<std::string> vocab = train_wordpiece(merged, options);
    if (vocab.size() < options.vocab_size)
      log::warn("tokenizer", "the corpus fills only " + std::to_string(vocab.size()) + " of the " +
                                 std::to_string(options.vocab_size) +
                                 " WordPiece tokens asked (no pair is seen tokens.min_frequency times more)");
    text[0] = format_vocab_txt(vocab);
  }
  broadcast_texts(comm, text);
  return WordPieceTokenizer::parse(text[0], basic).tokens();
}

std::vector<uint32_t> learn_char_vocab(Communicator& comm, const CorpusLayout& layout, DocumentMode mode,
                                       InvalidUtf8 invalid_utf8) {
  const auto [begin, end] = rank_range(layout.total_bytes(), comm.rank(), comm.size());
  std::vector<uint32_t> mine = distinct_code_points(document_separator(mode));
  read_documents(layout, mode, begin, end, kBatchBytes, [&](const DocumentBatch& batch) {
    CharEncodeOptions opt;
    opt.invalid_utf8 = invalid_utf8;
    opt.source = *batch.file;
    opt.source_offset = batch.offset;
    // The batch's documents are consecutive bytes of one file (with their delimiters, whose
    // characters are the separator's): one pass over the whole span.
    const std::string_view span(batch.docs.front().data(),
                                static_cast<size_t>(batch.docs.back().data() + batch.docs.back().size() -
                                                    batch.docs.front().data()));
    mine = merge_code_points(mine, distinct_code_points(span, opt));
  });
  std::vector<uint8_t> seen(0x110000, 0);   // (code points) 1 where some rank saw it
  for (uint32_t cp : mine) seen[cp] = 1;
  comm.allreduce(Tensor::of(seen.data(), static_cast<int64_t>(seen.size())), {ReduceOp::kMax});
  std::vector<uint32_t> out;
  for (uint32_t cp = 0; cp < seen.size(); ++cp)
    if (seen[cp]) out.push_back(cp);
  return out;
}

int run_tokenize_command(Session& session) {
  // A BERT config's shards are in sentence layout (Note [Token layouts]), so that its run reuses them.
  const TokenLayout layout =
      session.config().train.model == "bert" ? TokenLayout::kSentences : TokenLayout::kDocuments;
  const TokenData data =
      token_stage(session.comm(), session.config(), session.run_dir(), session.env().threads, layout);
  if (session.comm().rank() == 0)
    std::printf("%s %zu shards in %s: %llu tokens, %llu documents, vocabulary %zu, %.2f s%s\n",
                data.time.reused ? "reused" : "wrote", data.shard_paths.size(), data.dir.c_str(),
                static_cast<unsigned long long>(data.tokens), static_cast<unsigned long long>(data.documents),
                data.vocab_size(), data.time.seconds,
                data.time.reused ? "" : (", " + fixed(data.mb_per_s, 2) + " MB/s").c_str());
  return 0;
}

}  // namespace loom
