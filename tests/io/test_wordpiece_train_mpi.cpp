// `loom tokenizer train --kind wordpiece` through the binary, alone and under real mpirun
// at np 2 and 3: the same vocab.txt bytes (the word counts summed exactly across ranks),
// exactly --vocab-size tokens with BERT's specials first; and `loom tokenize` with
// tokens.tokenizer = wordpiece at np 1 and 2: the same stream, equal to encoding each
// document in process with [SEP] after it; cased and uncased shards differ.
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "io/token_shard.h"
#include "io/wordpiece.h"
#include "tests/io/wordpiece_hf_text.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

using namespace std::chrono_literals;
using test::RunResult;
using test::TempDir;

RunResult run_loom(int np, const std::vector<std::string>& args) {
  std::vector<std::string> cmd;
  if (np > 1) cmd = test::mpirun_prefix(np);
  cmd.push_back(test::loom_binary());
  cmd.insert(cmd.end(), args.begin(), args.end());
  return test::run(cmd, 300s);
}

// Two files of generated multilingual documents separated by blank lines.
std::vector<std::string> write_corpus(const TempDir& dir) {
  std::vector<std::string> docs;
  for (int f = 0; f < 2; ++f) {
    std::string text;
    for (std::string& d : test::bpe_generated_docs(20 + f, f == 0 ? 120 : 50)) {
      std::string flat;   // one paragraph per document: no blank line inside
      for (char c : d) flat.push_back(c == '\n' || c == '\r' ? ' ' : c);
      text += flat + "\n\n";
      docs.push_back(std::move(flat));
    }
    test::write_file(dir.file("part" + std::to_string(f) + ".txt"), text);
  }
  return docs;
}

std::vector<uint32_t> stream_of(const std::string& tokens_dir) {
  std::vector<uint32_t> ids;
  std::ifstream manifest(tokens_dir + "/manifest.txt");
  std::string line;
  while (std::getline(manifest, line)) {
    if (line.rfind("shard = ", 0) != 0) continue;
    const std::string name = line.substr(8, line.find(' ', 8) - 8);
    TokenShard s = TokenShard::open(tokens_dir + "/" + name);
    for (uint64_t i = 0; i < s.size(); ++i) ids.push_back(s[i]);
  }
  return ids;
}

TEST(WordPieceTrainMpi, SameVocabularyAtEveryWorldSizeAndTokenStream) {
  TempDir dir;
  const std::vector<std::string> docs = write_corpus(dir);
  const std::vector<std::string> corpus = {"--corpus", dir.file("part0.txt"), dir.file("part1.txt")};
  std::string first;
  for (int np : {1, 2, 3}) {
    const std::string out = dir.file("vocab-np" + std::to_string(np));
    std::vector<std::string> args = {"tokenizer", "train", "--kind", "wordpiece", "--vocab-size", "700", "--out", out};
    args.insert(args.end(), corpus.begin(), corpus.end());
    const RunResult r = run_loom(np, args);
    ASSERT_EQ(r.status, 0) << "np " << np << ":\n" << r.out << r.err;
    const std::string vocab = test::read_file(out + "/vocab.txt");
    if (np == 1) {
      first = vocab;
      const WordPieceTokenizer tok = WordPieceTokenizer::load(out + "/vocab.txt");
      EXPECT_EQ(tok.vocab_size(), 700u);
      for (size_t s = 0; s < 5; ++s) EXPECT_EQ(tok.token(static_cast<uint32_t>(s)), kWordPieceSpecials[s]);
    } else {
      EXPECT_EQ(vocab, first) << "vocab.txt at np " << np << " differs from np 1";
    }
  }

  // The token stage with that vocabulary, uncased then cased.
  const WordPieceTokenizer tok = WordPieceTokenizer::load(dir.file("vocab-np1/vocab.txt"));
  std::vector<uint32_t> expected;
  for (const std::string& d : docs) {
    const std::vector<uint32_t> ids = tok.encode(d);
    expected.insert(expected.end(), ids.begin(), ids.end());
    expected.push_back(tok.sep_id());
  }
  std::vector<uint32_t> cased_stream;
  for (int np : {1, 2}) {
    for (const char* lowercase : {"true", "false"}) {
      const std::string run_dir = dir.file("run-" + std::to_string(np) + lowercase);
      const RunResult r = run_loom(
          np, {"tokenize", "--set", "corpus.paths=[\"" + dir.file("part0.txt") + "\", \"" + dir.file("part1.txt") + "\"]",
               "--set", "tokens.tokenizer=wordpiece", "--set", "tokens.vocab=" + dir.file("vocab-np1/vocab.txt"),
               "--set", std::string("tokens.lowercase=") + lowercase, "--set", "run.dir=" + run_dir, "--set",
               "run.threads=2"});
      ASSERT_EQ(r.status, 0) << "np " << np << ":\n" << r.out << r.err;
      const std::vector<uint32_t> stream = stream_of(run_dir + "/tokens");
      if (std::string(lowercase) == "true") {
        EXPECT_EQ(stream, expected) << "np " << np;
      } else if (np == 1) {
        cased_stream = stream;
        EXPECT_NE(stream, expected);
      } else {
        EXPECT_EQ(stream, cased_stream);
      }
    }
  }
}

}  // namespace
}  // namespace loom
