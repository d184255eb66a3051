// wordpiece_tool: loom's WordPiece encoder from the command line, for bench/wordpiece.sh.
//
//   wordpiece_tool encode VOCAB_TXT FILE THREADS [--cased]
//       encodes FILE's non-empty lines as documents (encode_documents on THREADS threads,
//       [SEP] after every line, as `loom tokenize` with tokens.documents = line); prints
//       bytes, lines, tokens, the CRC-32 (zlib) of the ids as little-endian uint32 (as
//       tests/python/hf_wordpiece.py speed does), seconds and MB/s of the encoding alone
#include <zlib.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/wordpiece.h"

namespace {

using Clock = std::chrono::steady_clock;

int encode(const std::string& vocab, const std::string& path, int threads, bool cased) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw loom::IoError(path + ": cannot open");
  std::ostringstream s;
  s << in.rdbuf();
  const std::string text = std::move(s).str();
  std::vector<std::string_view> lines;
  size_t bytes = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    if (end > pos) {
      lines.emplace_back(text.data() + pos, end - pos);
      bytes += end - pos;
    }
    pos = end + 1;
  }
  loom::WordPieceOptions opt;
  opt.lowercase = !cased;
  const loom::WordPieceTokenizer tok = loom::WordPieceTokenizer::load(vocab, opt);
  loom::TokenizeOptions enc;
  enc.threads = threads;
  enc.source = path;
  std::vector<uint32_t> ids;
  ids.reserve(bytes / 3);
  const auto t0 = Clock::now();
  tok.encode_documents(lines, ids, enc);
  ids.push_back(tok.sep_id());   // after the last line too
  const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  const uLong crc = crc32_z(0, reinterpret_cast<const Bytef*>(ids.data()), ids.size() * sizeof(uint32_t));
  std::printf("loom WordPiece encode_documents: %zu bytes, %zu lines, %zu tokens (with [SEP]), crc32 %08lx, "
              "%.2f s, %.2f MB/s (%d threads)\n",
              bytes, lines.size(), ids.size(), static_cast<unsigned long>(crc), seconds,
              static_cast<double>(bytes) / seconds / 1e6, threads);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc >= 5 && std::string(argv[1]) == "encode")
      return encode(argv[2], argv[3], std::stoi(argv[4]), argc >= 6 && std::string(argv[5]) == "--cased");
    std::fprintf(stderr, "usage: wordpiece_tool encode VOCAB_TXT FILE THREADS [--cased]\n");
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "wordpiece_tool: %s\n", e.what());
    return 1;
  }
}
