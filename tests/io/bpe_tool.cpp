// bpe_tool: loom's tokenizer library from the command line, for benchmarks and manual
// checks until `loom tokenizer train` / `loom tokenize` exist.
//
//   bpe_tool train --vocab-size N --out DIR FILE    documents = blank-line separated
//   bpe_tool encode VOCAB MERGES FILE [THREADS]     prints MB/s: without THREADS one thread,
//                                                   line by line (as hf_bpe.py speed); with
//                                                   THREADS, articles (blank-line separated)
//                                                   by encode_documents_parallel
//   bpe_tool shard VOCAB MERGES FILE OUT            token shard, <|endoftext|> between docs
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/bpe_tokenizer.h"
#include "io/bpe_train.h"
#include "io/token_shard.h"

namespace {

using Clock = std::chrono::steady_clock;

std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw loom::IoError(path + ": cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  return std::move(s).str();
}

std::vector<std::string_view> split(std::string_view text, std::string_view sep) {
  std::vector<std::string_view> out;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find(sep, pos);
    end = end == std::string_view::npos ? text.size() : end + sep.size();
    out.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return out;
}

double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

int train(int argc, char** argv) {
  size_t vocab_size = 0;
  std::string out, file;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--vocab-size" && i + 1 < argc) vocab_size = std::stoul(argv[++i]);
    else if (a == "--out" && i + 1 < argc) out = argv[++i];
    else file = a;
  }
  if (!vocab_size || out.empty() || file.empty()) return 2;
  const std::string text = read_all(file);
  auto t0 = Clock::now();
  loom::BpeWordCounts counts;
  loom::BpeCountOptions copt;
  copt.source = file;
  for (std::string_view doc : split(text, "\n\n")) {
    loom::count_bpe_words(doc, counts, copt);
    copt.source_offset += doc.size();
  }
  const double count_s = since(t0);
  auto t1 = Clock::now();
  loom::BpeTrainOptions opt;
  opt.vocab_size = vocab_size;
  loom::BpeVocab vocab = loom::train_bpe(counts, opt);
  std::filesystem::create_directories(out);
  loom::write_bpe_files(vocab, out + "/vocab.json", out + "/merges.txt");
  std::printf("counted %zu distinct words in %.2f s, learned %zu merges (%zu tokens) in %.2f s\n",
              counts.size(), count_s, vocab.merges.size(), vocab.tokens.size(), since(t1));
  return 0;
}

int encode_parallel(const loom::BpeTokenizer& tok, const std::string& text, int threads) {
  const std::vector<std::string_view> docs = split(text, "\n\n");
  auto t0 = Clock::now();
  const std::vector<uint32_t> ids = loom::encode_documents_parallel(tok, docs, threads);
  const double s = since(t0);
  std::printf("loom: %zu bytes, %zu documents, %zu tokens, %.2f s, %.2f MB/s (%d threads)\n",
              text.size(), docs.size(), ids.size(), s, static_cast<double>(text.size()) / s / 1e6,
              threads);
  return 0;
}

int encode(int argc, char** argv) {
  if (argc != 5 && argc != 6) return 2;
  loom::BpeTokenizer tok = loom::BpeTokenizer::load(argv[2], argv[3]);
  const std::string text = read_all(argv[4]);
  if (argc == 6) return encode_parallel(tok, text, std::stoi(argv[5]));
  const std::vector<std::string_view> lines = split(text, "\n");
  loom::BpeEncoder enc(tok);
  std::vector<uint32_t> ids;
  ids.reserve(text.size() / 3);
  auto t0 = Clock::now();
  for (std::string_view line : lines) {
    if (!line.empty() && line.back() == '\n') line.remove_suffix(1);   // as HF's script
    enc.encode(line, ids);
  }
  const double s = since(t0);
  size_t bytes = text.size() - (lines.size() - (text.empty() || text.back() != '\n' ? 1 : 0));
  std::printf("loom: %zu bytes, %zu tokens, %.2f s, %.2f MB/s (one thread)\n", bytes, ids.size(),
              s, static_cast<double>(bytes) / s / 1e6);
  return 0;
}

int shard(int argc, char** argv) {
  if (argc != 6) return 2;
  loom::BpeTokenizer tok = loom::BpeTokenizer::load(argv[2], argv[3]);
  const std::string text = read_all(argv[4]);
  const std::vector<std::string_view> docs = split(text, "\n\n");
  std::vector<uint32_t> ids;
  loom::BpeEncoder(tok).encode_documents(docs, ids);
  loom::TokenShardWriter w(argv[5], static_cast<uint32_t>(tok.vocab_size()), tok.fingerprint());
  w.append(ids);
  w.add_documents(docs.size());
  w.commit();
  std::printf("%s: %zu tokens, %zu documents\n", argv[5], ids.size(), docs.size());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string cmd = argc > 1 ? argv[1] : "";
    int rc = 2;
    if (cmd == "train") rc = train(argc, argv);
    else if (cmd == "encode") rc = encode(argc, argv);
    else if (cmd == "shard") rc = shard(argc, argv);
    if (rc == 2)
      std::fprintf(stderr, "usage: bpe_tool train --vocab-size N --out DIR FILE\n"
                           "       bpe_tool encode VOCAB MERGES FILE [THREADS]\n"
                           "       bpe_tool shard VOCAB MERGES FILE OUT\n");
    return rc;
  } catch (const loom::Error& e) {
    std::fprintf(stderr, "bpe_tool: %s\n", e.what());
    return 1;
  }
}
