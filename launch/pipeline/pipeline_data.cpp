// The data stages of an embedding run (pipeline_data.h): corpus, vocabulary,
// co-occurrence, with reuse by fingerprint (Note [Stage reuse]).
#include "launch/pipeline/pipeline_data.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "core/measure.h"
#include "dist/communicator.h"
#include "launch/config/config.h"
#include "io/planted_corpus.h"

namespace loom {
namespace {

namespace fs = std::filesystem;

}  // namespace

std::string read_text(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// PATH.tmp, then rename: a reader sees the old file or the whole new one.
void write_text_atomically(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << text;
    out.flush();
    if (!out) throw IoError("cannot write " + tmp + ": " + std::strerror(errno));
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) throw IoError("cannot rename " + tmp + " to " + path + ": " + ec.message());
}

// The first line where `stored` and `now` differ, for the "recomputing because" log.
static std::string first_difference(const std::string& stored, const std::string& now) {
  if (stored.empty()) return "no earlier result";
  std::istringstream a(stored), b(now);
  std::string la, lb;
  while (true) {
    bool ga = static_cast<bool>(std::getline(a, la)), gb = static_cast<bool>(std::getline(b, lb));
    if (!ga && !gb) return "identical";
    if (la != lb || ga != gb) return "was '" + (ga ? la : std::string("(none)")) + "', now '" + (gb ? lb : std::string("(none)")) + "'";
  }
}

// One line per corpus file: resolved path, bytes on disk, modification time in ns.
static std::string corpus_fingerprint(const CorpusOptions& corpus) {
  std::string out = "# loom-fingerprint 1\n";
  for (const std::string& path : resolve_corpus_paths(corpus.paths)) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw IoError("cannot stat corpus file " + path + ": " + std::strerror(errno));
    const int64_t mtime_ns = int64_t{st.st_mtim.tv_sec} * 1000000000 + st.st_mtim.tv_nsec;
    out += "corpus.file = " + fs::absolute(path).lexically_normal().string() + " size=" +
           std::to_string(st.st_size) + " mtime_ns=" + std::to_string(mtime_ns) + "\n";
  }
  out += "corpus.lowercase = " + std::string(corpus.lowercase ? "true" : "false") + "\n";
  out += "corpus.max_token_bytes = " + std::to_string(corpus.max_token_bytes) + "\n";
  out += "corpus.max_line_bytes = " + std::to_string(corpus.max_line_bytes) + "\n";
  out += "corpus.utf8 = " + std::string(corpus.utf8 == Utf8Policy::kError ? "error" : "replace") + "\n";
  return out;
}

std::string vocab_fingerprint(const Config& config, const CorpusOptions& corpus) {
  // The file version too: a run directory whose vocab.h5 predates the checksums
  // (format_version 1, Note [vocab.h5] in io/vocab.h) gets it rewritten.
  return corpus_fingerprint(corpus) + "vocab.min_count = " + std::to_string(config.vocab.min_count) +
         "\nvocab.max_vocab = " + std::to_string(config.vocab.max_vocab) +
         "\nvocab.h5 format_version = " + std::to_string(kVocabH5Version) + "\n";
}

// Rank 0 decides whether the stage's stored fingerprint matches `now`; every rank learns it.
bool agree_on_reuse(Communicator& comm, const std::string& fingerprint_path, const std::string& now,
                    const std::vector<std::string>& outputs, const char* stage) {
  int32_t reuse = 0;
  if (comm.rank() == 0) {
    const std::string stored = read_text(fingerprint_path);
    bool outputs_there = true;
    for (const std::string& o : outputs) outputs_there = outputs_there && fs::exists(o);
    reuse = stored == now && outputs_there ? 1 : 0;
    if (reuse == 0) {
      log::info(stage, std::string("computing (") +
                           (stored == now ? "an output file is missing" : first_difference(stored, now)) + ")");
      std::error_code ec;
      fs::remove(fingerprint_path, ec);
    }
  }
  comm.broadcast(Tensor::of(&reuse, 1), 0);
  return reuse != 0;
}

// Collective on first use (every rank reaches it together: the reuse decision is shared).
// An empty corpus is an error naming its files here, before a stage turns it into a message
// about what it lacks (an empty vocabulary, a token shard without one, no held-out token).
const CorpusLayout& layout_of(Communicator& comm, CorpusPlan& corpus) {
  if (!corpus.layout) {
    CorpusLayout layout = CorpusLayout::scan(comm, corpus.options);   // the same on every rank
    if (layout.total_bytes() == 0) {
      const std::vector<CorpusFile>& files = layout.files();
      std::string named;
      for (size_t i = 0; i < files.size() && i < 5; ++i) named += (i == 0 ? "" : ", ") + files[i].path;
      if (files.size() > 5) named += " and " + std::to_string(files.size() - 5) + " more";
      throw DataError("the corpus is empty: " + named + (files.size() == 1 ? " holds" : " hold") +
                      " no bytes (check corpus.paths)");
    }
    corpus.layout = std::move(layout);
  }
  return *corpus.layout;
}


CorpusOptions corpus_options(const Config& config) {
  const CorpusSection& c = config.corpus;
  if (c.paths.empty() && !c.synthetic)
    throw ConfigError("corpus.paths is empty: name the corpus files (corpus.paths = [\"a.txt\", \"dir/*.xz\"]) "
                      "or set corpus.synthetic = true for the planted-relation corpus");
  if (!c.paths.empty() && c.synthetic)
    throw ConfigError("corpus.synthetic = true and corpus.paths are both set: choose one (--set "
                      "corpus.synthetic=false trains on corpus.paths)");
  CorpusOptions o;
  o.paths = c.paths;
  o.lowercase = c.lowercase;
  o.max_token_bytes = static_cast<size_t>(c.max_token_bytes);
  o.max_line_bytes = static_cast<size_t>(c.max_line_bytes);
  o.utf8 = c.utf8 == "replace" ? Utf8Policy::kReplace : Utf8Policy::kError;
  return o;
}

DisplayOptions display_options(const Config& config) {
  DisplayOptions o;
  o.bar = config.progress.bar == "on"    ? DisplayOptions::Bar::kOn
          : config.progress.bar == "off" ? DisplayOptions::Bar::kOff
                                         : DisplayOptions::Bar::kAuto;
  o.interval_s = config.progress.interval_s;
  o.status_port = static_cast<int>(config.status.port);
  o.status_bind = config.status.bind;
  return o;
}

VocabOptions vocab_options(const Config& config, int threads) {
  VocabOptions o;
  o.min_count = config.vocab.min_count;
  o.max_vocab = config.vocab.max_vocab;
  o.threads = threads;
  return o;
}

// Note [Corpus from standard input]
// `-` in corpus.paths is standard input (`xzcat wiki.xz | loom train RUN.toml --set
// corpus.paths=-`). The corpus is read more than once (the vocabulary, the co-occurrence
// counts, each word2vec epoch) and in byte ranges, one per rank, so a pipe cannot be read
// in place: rank 0 - the only rank a launcher gives standard input (mpirun forwards it to
// rank 0, srun's default --input=all gives every task the same stream, which only rank 0
// drains) - copies it into DIR/stdin.txt, and every rank then reads that file, as all of
// them read the planted corpus rank 0 writes there. This works at any world size with the
// run directory on a file system every rank sees (which checkpoints need anyway). A
// terminal is refused rather than waited on.
static std::string spool_standard_input(Communicator& comm, const std::string& dir) {
  const std::string path = dir + "/stdin.txt";
  int64_t bytes = 0;
  if (comm.rank() == 0) {
    if (::isatty(STDIN_FILENO) == 1)
      throw IoError("corpus.paths names '-' (standard input), but standard input is a terminal: pipe the corpus "
                    "in (`xzcat corpus.xz | loom train RUN.toml --set corpus.paths=-`) or name its files");
    std::error_code ec;
    fs::create_directories(dir, ec);
    const std::string tmp = path + ".tmp";
    std::FILE* out = std::fopen(tmp.c_str(), "wb");
    if (out == nullptr) throw IoError("cannot write " + tmp + ": " + std::strerror(errno));
    std::vector<char> buffer(1 << 20);
    size_t n = 0;
    while ((n = std::fread(buffer.data(), 1, buffer.size(), stdin)) > 0) {
      if (std::fwrite(buffer.data(), 1, n, out) != n) {
        std::fclose(out);
        throw IoError("cannot write " + tmp + ": " + std::strerror(errno));
      }
      bytes += static_cast<int64_t>(n);
    }
    const bool read_failed = std::ferror(stdin) != 0;
    if (std::fclose(out) != 0 || read_failed)
      throw IoError(read_failed ? "cannot read standard input (corpus.paths '-')" : "cannot write " + tmp);
    fs::rename(tmp, path, ec);
    if (ec) throw IoError("cannot rename " + tmp + " to " + path + ": " + ec.message());
    log::info("corpus", "read " + std::to_string(bytes) + " bytes of standard input (corpus.paths '-') into " + path);
  }
  comm.barrier();   // the file is complete before any rank opens it
  return path;
}

CorpusPlan prepare_corpus(Communicator& comm, const Config& config, const std::string& run_dir) {
  CorpusPlan plan;
  plan.options = corpus_options(config);
  const auto dash = std::count(plan.options.paths.begin(), plan.options.paths.end(), std::string("-"));
  if (dash > 1) throw ConfigError("corpus.paths names '-' (standard input) more than once");
  if (dash == 1) {
    const std::string spooled = spool_standard_input(comm, run_dir);
    for (std::string& p : plan.options.paths)
      if (p == "-") p = spooled;
  }
  if (!config.corpus.synthetic) return plan;
  if (RunStatus* status = RunStatus::current()) status->set_stage("corpus");
  const std::string corpus = run_dir + "/planted.txt", questions = run_dir + "/planted-questions.txt";
  const std::string meta_path = run_dir + "/planted.fingerprint";
  const std::string meta = "# loom-fingerprint 1\nrun.seed = " + std::to_string(config.run.seed) +
                           "\ncorpus.synthetic_sentences = " + std::to_string(config.corpus.synthetic_sentences) + "\n";
  if (comm.rank() == 0) {
    if (read_text(meta_path) != meta || !fs::exists(corpus) || !fs::exists(questions)) {
      std::error_code ec;
      fs::remove(meta_path, ec);
      PlantedCorpusInfo info = generate_planted_corpus(corpus, questions, static_cast<uint64_t>(config.run.seed),
                                                       config.corpus.synthetic_sentences);
      write_text_atomically(meta_path, meta);
      log::info("corpus", "generated the planted-relation corpus " + corpus + " (" + std::to_string(info.sentences) +
                              " sentences, " + std::to_string(info.tokens) + " tokens) and " +
                              std::to_string(info.questions) + " analogy questions in " + questions);
    } else {
      log::info("corpus", "reusing the planted-relation corpus " + corpus);
    }
  }
  comm.barrier();   // the files exist before any rank looks at them
  plan.options.paths = {corpus};
  plan.planted_questions = questions;
  return plan;
}

Vocab vocab_stage(Communicator& comm, const Config& config, CorpusPlan& corpus, const std::string& run_dir,
                  int threads, StageTime* time) {
  const auto t0 = SteadyClock::now();
  const std::string txt = run_dir + "/vocab.txt", h5 = run_dir + "/vocab.h5", fp = run_dir + "/vocab.fingerprint";
  const std::string now = comm.rank() == 0 ? vocab_fingerprint(config, corpus.options) : std::string();
  Vocab vocab;
  if (agree_on_reuse(comm, fp, now, {txt, h5}, "vocab")) {
    vocab = read_vocab_txt(txt);
    log::info("vocab", "reusing " + txt + " (" + std::to_string(vocab.size()) +
                           " words; corpus files and settings unchanged since " + fp + ")");
    if (time != nullptr) time->reused = true;
  } else {
    VocabStats stats;
    {
      const CorpusLayout& layout = layout_of(comm, corpus);
      StageProgress progress(comm.rank(), "vocab", display_options(config));
      vocab = build_vocab(comm, layout, corpus.options, vocab_options(config, threads), &stats);
    }
    if (comm.rank() == 0) {
      write_vocab_txt(vocab, txt);
      write_vocab_h5(vocab, h5);
      write_text_atomically(fp, now);
    }
    log::info("vocab", std::to_string(vocab.size()) + " words (of " + std::to_string(stats.distinct) + " distinct, " +
                           std::to_string(stats.tokens) + " tokens, min_count " +
                           std::to_string(config.vocab.min_count) + ") in " + fixed(stats.seconds, 2) + " s; wrote " +
                           txt + " and " + h5);
    if (comm.rank() == 0 && stats.utf8_replaced > 0)
      log::warn("vocab", std::to_string(stats.utf8_replaced) +
                             " invalid UTF-8 sequences and NUL bytes replaced by U+FFFD (corpus.utf8 = replace)");
    if (comm.rank() == 0 && stats.truncated > 0)
      log::warn("vocab", std::to_string(stats.truncated) + " tokens longer than corpus.max_token_bytes = " +
                             std::to_string(config.corpus.max_token_bytes) + " bytes truncated to it");
  }
  // Name the corpus: "the corpus" alone left a user with several configs guessing.
  std::string files;
  for (const std::string& p : corpus.options.paths) files += (files.empty() ? "" : ", ") + p;
  LOOM_CHECK(vocab.size() > 0, DataError,
             "the vocabulary is empty: no token of the corpus (" + files + ") occurs vocab.min_count = " +
                 std::to_string(config.vocab.min_count) + " times");
  // One word has no pair to learn from: GloVe trained 0 updates and word2vec drew the word
  // as its own negative, and both exported untrained vectors with exit 0.
  LOOM_CHECK(vocab.size() > 1, DataError,
             "the vocabulary of the corpus (" + files + ") holds one word ('" + vocab.token(0) +
                 "'); embeddings need at least two words to learn anything (lower vocab.min_count or use a larger corpus)");
  if (time != nullptr) time->seconds = seconds_since(t0);
  return vocab;
}

}  // namespace loom
