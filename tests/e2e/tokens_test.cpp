// `loom tokenizer train` and `loom tokenize` through the binary, alone and under mpirun:
// the same vocabulary files at np 1, 2, 3; the same token stream at np 1, 2 and equal to
// encoding each document in process; reuse while the inputs are unchanged and tokenizing
// again when the corpus or the tokenizer changes; shards of another tokenizer refused.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/bpe_tokenizer.h"
#include "io/char_tokenizer.h"
#include "io/token_shard.h"
#include "io/tokenizer.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

using namespace std::chrono_literals;
using test::RunResult;
using test::TempDir;

RunResult loom(int np, const std::vector<std::string>& args) {
  std::vector<std::string> cmd;
  if (np > 1) cmd = test::mpirun_prefix(np);
  cmd.push_back(test::loom_binary());
  cmd.insert(cmd.end(), args.begin(), args.end());
  return test::run(cmd, 300s);
}

std::string output(const RunResult& r) { return r.out + r.err; }

// Articles separated by blank lines (sometimes two), lines starting with a space, two files
// of different sizes, the last one without a final newline.
void write_corpus(const TempDir& dir, int articles, const std::string& salt = "") {
  std::filesystem::create_directories(dir.file("corpus"));
  const char* words[] = {"the", "of", "alpha", "beta", "gamma's", "don't", "12", "3.5", "über", "naïve", "—", "x"};
  for (int f = 0; f < 2; ++f) {
    std::ofstream out(dir.file("corpus/part" + std::to_string(f) + ".txt"), std::ios::binary);
    for (int a = 0; a < (f == 0 ? articles : articles / 3); ++a) {   // rank ranges fall mid-file
      out << " = Article " << f << "." << a << salt << " =\n";
      for (int l = 0; l < 1 + a % 3; ++l) {
        for (int w = 0; w < 5 + (a * 7 + l) % 23; ++w) out << (w ? " " : (l % 2 ? " " : "")) << words[(a + l * 3 + w * w) % 12];
        out << ".\n";
      }
      out << (a % 5 == 0 ? "\n\n" : "\n");
    }
    if (f == 1) out << "last words without newline";
  }
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

// The expected stream: every file split at empty lines, each document encoded alone, then EOT.
std::vector<uint32_t> expected_stream(const TempDir& dir, const BpeTokenizer& tok) {
  std::vector<uint32_t> ids;
  for (int f = 0; f < 2; ++f) {
    const std::string text = test::read_file(dir.file("corpus/part" + std::to_string(f) + ".txt"));
    std::vector<std::string> lines;
    size_t at = 0;
    while (at <= text.size()) {
      size_t nl = text.find('\n', at);
      if (nl == std::string::npos) nl = text.size();
      lines.push_back(text.substr(at, nl - at));
      at = nl + 1;
    }
    std::string doc;
    auto end_doc = [&] {
      if (doc.empty()) return;
      std::vector<uint32_t> d = tok.encode(doc);
      ids.insert(ids.end(), d.begin(), d.end());
      ids.push_back(tok.eot_id());
      doc.clear();
    };
    for (const std::string& l : lines) {
      if (l.empty()) end_doc();
      else doc += (doc.empty() ? "" : "\n") + l;
    }
    end_doc();
  }
  return ids;
}

std::vector<std::string> tokenize_args(const TempDir& dir, const std::string& run, const std::string& tok) {
  return {"tokenize",
          "--set", "run.dir=" + dir.file(run),
          "--set", "corpus.paths=[\"" + dir.file("corpus") + "\"]",
          "--set", "tokens.vocab=" + dir.file(tok + "/vocab.json"),
          "--set", "tokens.merges=" + dir.file(tok + "/merges.txt"),
          "--set", "run.threads=2"};
}

RunResult train_tokenizer(int np, const TempDir& dir, const std::string& out, int vocab_size) {
  return loom(np, {"tokenizer", "train", "--corpus", dir.file("corpus"), "--vocab-size",
                   std::to_string(vocab_size), "--out", dir.file(out)});
}

TEST(TokensE2E, TokenizerTrainWritesTheSameFilesAtEveryWorldSize) {
  TempDir dir;
  write_corpus(dir, 120);
  for (int np : {1, 2, 3}) {
    RunResult r = train_tokenizer(np, dir, "tok" + std::to_string(np), 420);
    ASSERT_EQ(r.status, 0) << output(r);
    EXPECT_NE(output(r).find("420 tokens"), std::string::npos) << output(r);
  }
  for (const char* f : {"/vocab.json", "/merges.txt"}) {
    const std::string one = test::read_file(dir.file("tok1") + f);
    ASSERT_FALSE(one.empty());
    EXPECT_EQ(one, test::read_file(dir.file("tok2") + f)) << f << " differs at np 2";
    EXPECT_EQ(one, test::read_file(dir.file("tok3") + f)) << f << " differs at np 3";
  }
  RunResult chars = loom(2, {"tokenizer", "train", "--corpus", dir.file("corpus"), "--kind", "char", "--out", dir.file("chars")});
  ASSERT_EQ(chars.status, 0) << output(chars);
  CharTokenizer c = CharTokenizer::load(dir.file("chars/char_vocab.txt"));
  EXPECT_EQ(c.code_points(), CharTokenizer::from_text(test::read_file(dir.file("corpus/part0.txt")) +
                                                      test::read_file(dir.file("corpus/part1.txt")) + "\n\n")
                                 .code_points());
}

TEST(TokensE2E, TokenizeGivesTheSameStreamAtNp1To3AsEncodingEachDocument) {
  TempDir dir;
  write_corpus(dir, 150);
  ASSERT_EQ(train_tokenizer(1, dir, "tok", 400).status, 0);
  RunResult one = loom(1, tokenize_args(dir, "run1", "tok"));
  ASSERT_EQ(one.status, 0) << output(one);
  EXPECT_NE(output(one).find("wrote 1 shards"), std::string::npos) << output(one);
  EXPECT_NE(output(one).find("MB/s"), std::string::npos) << output(one);
  RunResult two = loom(2, tokenize_args(dir, "run2", "tok"));
  ASSERT_EQ(two.status, 0) << output(two);
  EXPECT_NE(output(two).find("wrote 2 shards"), std::string::npos) << output(two);
  RunResult three = loom(3, tokenize_args(dir, "run3", "tok"));
  ASSERT_EQ(three.status, 0) << output(three);
  const std::vector<uint32_t> a = stream_of(dir.file("run1/tokens")), b = stream_of(dir.file("run2/tokens"));
  ASSERT_GT(a.size(), 1000u);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, stream_of(dir.file("run3/tokens")));
  BpeTokenizer tok = BpeTokenizer::load(dir.file("tok/vocab.json"), dir.file("tok/merges.txt"));
  const std::vector<uint32_t> want = expected_stream(dir, tok);
  ASSERT_EQ(a.size(), want.size());
  for (size_t i = 0; i < a.size(); ++i) ASSERT_EQ(a[i], want[i]) << "token " << i;
  const auto documents = std::count(want.begin(), want.end(), tok.eot_id());
  EXPECT_EQ(documents, 150 + 50 + 1) << "150 + 50 articles and the unterminated last line";
  EXPECT_NE(output(one).find(" " + std::to_string(documents) + " documents"), std::string::npos) << output(one);
}

TEST(TokensE2E, ReusesUnchangedInputsAndTokenizesAgainWhenCorpusOrTokenizerChange) {
  TempDir dir;
  write_corpus(dir, 80);
  ASSERT_EQ(train_tokenizer(1, dir, "tokA", 300).status, 0);
  ASSERT_EQ(train_tokenizer(1, dir, "tokB", 280).status, 0);
  auto tokenize = [&](int np, const std::string& tok) {
    RunResult r = loom(np, tokenize_args(dir, "run", tok));
    EXPECT_EQ(r.status, 0) << output(r);
    return output(r);
  };
  EXPECT_NE(tokenize(1, "tokA").find("wrote 1 shards"), std::string::npos);
  const std::vector<uint32_t> first = stream_of(dir.file("run/tokens"));
  EXPECT_NE(tokenize(1, "tokA").find("reused 1 shards"), std::string::npos);
  EXPECT_NE(tokenize(2, "tokA").find("reused 1 shards"), std::string::npos) << "another world size reuses the stream";
  // The corpus changes: tokenized again, and the np-2 parts replace the np-1 part.
  write_corpus(dir, 80, "b");
  std::string out = tokenize(2, "tokA");
  EXPECT_NE(out.find("wrote 2 shards"), std::string::npos) << out;
  EXPECT_NE(out.find("corpus.file"), std::string::npos) << "the log says what changed: " << out;
  EXPECT_FALSE(std::filesystem::exists(dir.file("run/tokens/part-00000-of-00001.tokens")));
  EXPECT_NE(stream_of(dir.file("run/tokens")), first);
  // Another tokenizer: tokenized again.
  out = tokenize(1, "tokB");
  EXPECT_NE(out.find("wrote 1 shards"), std::string::npos) << out;
  EXPECT_NE(out.find("tokenizer.fingerprint"), std::string::npos) << out;
  EXPECT_NE(tokenize(1, "tokB").find("reused"), std::string::npos);
}

TEST(TokensE2E, AShardOfAnotherTokenizerIsRefusedNamingItAndBothFingerprints) {
  TempDir dir;
  write_corpus(dir, 60);
  ASSERT_EQ(train_tokenizer(1, dir, "tokA", 300).status, 0);
  ASSERT_EQ(train_tokenizer(1, dir, "tokB", 280).status, 0);
  ASSERT_EQ(loom(1, tokenize_args(dir, "runA", "tokA")).status, 0);
  ASSERT_EQ(loom(1, tokenize_args(dir, "runB", "tokB")).status, 0);
  const std::string part = "/tokens/part-00000-of-00001.tokens";
  std::filesystem::copy_file(dir.file("runB") + part, dir.file("runA") + part,
                             std::filesystem::copy_options::overwrite_existing);
  RunResult r = loom(1, tokenize_args(dir, "runA", "tokA"));
  EXPECT_NE(r.status, 0) << output(r);
  const uint64_t fa = BpeTokenizer::load(dir.file("tokA/vocab.json"), dir.file("tokA/merges.txt")).fingerprint();
  const uint64_t fb = BpeTokenizer::load(dir.file("tokB/vocab.json"), dir.file("tokB/merges.txt")).fingerprint();
  ASSERT_NE(fa, fb) << "the two tokenizers must differ for this test";
  EXPECT_NE(output(r).find(dir.file("runA") + part), std::string::npos) << output(r);
  EXPECT_NE(output(r).find(fingerprint_hex(fa)), std::string::npos) << output(r);
  EXPECT_NE(output(r).find(fingerprint_hex(fb)), std::string::npos) << output(r);
  EXPECT_NE(output(r).find("another tokenizer"), std::string::npos) << output(r);
}

TEST(TokensE2E, CharTokensOfWholeFilesDecodeToTheCorpus) {
  TempDir dir;
  write_corpus(dir, 30);
  RunResult r = loom(2, {"tokenize", "--set", "run.dir=" + dir.file("run"), "--set",
                         "corpus.paths=[\"" + dir.file("corpus") + "\"]", "--set", "tokens.tokenizer=char",
                         "--set", "tokens.documents=file"});
  ASSERT_EQ(r.status, 0) << output(r);
  std::unique_ptr<Tokenizer> tok = load_tokenizer("char", std::vector<std::string>{dir.file("run/tokens/char_vocab.txt")});
  EXPECT_EQ(tok->decode(stream_of(dir.file("run/tokens"))),
            test::read_file(dir.file("corpus/part0.txt")) + test::read_file(dir.file("corpus/part1.txt")));
}

TEST(TokensE2E, ErrorsNameTheirCause) {
  TempDir dir;
  write_corpus(dir, 10);
  RunResult no_files = loom(1, {"tokenize", "--set", "run.dir=" + dir.file("run"), "--set",
                                "corpus.paths=[\"" + dir.file("corpus") + "\"]"});
  EXPECT_NE(no_files.status, 0);
  EXPECT_NE(output(no_files).find("loom tokenizer train"), std::string::npos) << output(no_files);
  test::write_file(dir.file("bad.txt"), std::string("good text\n\xC3\x28 bad\n"));
  ASSERT_EQ(train_tokenizer(1, dir, "tok", 300).status, 0);
  std::vector<std::string> args = tokenize_args(dir, "run2", "tok");
  args[4] = "corpus.paths=[\"" + dir.file("bad.txt") + "\"]";
  RunResult bad = loom(2, args);
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(output(bad).find(dir.file("bad.txt")), std::string::npos) << output(bad);
  EXPECT_NE(output(bad).find("invalid UTF-8"), std::string::npos) << output(bad);
}

}  // namespace
}  // namespace loom
