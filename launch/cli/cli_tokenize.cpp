// `loom tokenize` (the token stage alone) and `loom tokenizer train` (learn a BPE,
// WordPiece or character vocabulary from a corpus, counted across ranks). launch/pipeline/token_stage.h.
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "core/measure.h"
#include "dist/mpi_communicator.h"
#include "io/bpe_files.h"
#include "io/char_tokenizer.h"
#include "io/corpus_shard.h"
#include "io/tokenizer.h"
#include "io/wordpiece.h"
#include "launch/cli/cli.h"
#include "launch/config/config.h"
#include "launch/kinds/tokens.h"
#include "launch/pipeline/pipeline_data.h"
#include "launch/pipeline/token_stage.h"

namespace loom {
namespace {

// Bound to the options; lives as long as the program (CLI11 writes into it during parse).
struct TokenizeArgs {
  std::string config;
  std::vector<std::string> set;
  // tokenizer train
  std::string train_config;
  std::vector<std::string> train_set;
  std::vector<std::string> corpus;
  int64_t vocab_size = 0;
  std::string out;
  std::string kind;
  std::string documents;
};

const char* const kTokenFiles =
    "FILES (in tokens.dir, default RUN_DIR/tokens)\n"
    "  part-RRRRR-of-WWWWW.tokens   rank R's token shard (header: magic LOOMTOKS, version,\n"
    "                               width, count, documents, tokenizer fingerprint, CRCs)\n"
    "  manifest.txt                 the shards in stream order, their token and document\n"
    "                               counts, the tokenizer's kind, fingerprint, vocabulary size\n"
    "  tokens.fingerprint           the inputs (corpus files' paths, sizes, mtimes; tokenizer\n"
    "                               fingerprint; tokens.documents, tokens.invalid_utf8): a later\n"
    "                               run with the same inputs reuses the shards at any world size\n"
    "  char_vocab.txt               the learned character vocabulary (tokens.tokenizer = char)\n";

// "[\"a\", \"b\"]" for --set corpus.paths=...
std::string toml_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (size_t i = 0; i < items.size(); ++i) {
    out += (i ? ", \"" : "\"");
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out.push_back('\\');
      out.push_back(c);
    }
    out += "\"";
  }
  return out + "]";
}

int train_tokenizer(Session& session, const std::string& out) {
  const auto t0 = SteadyClock::now();
  Communicator& comm = session.comm();
  const Config& config = session.config();
  const TokensSection& t = config.models.get<TokensSection>();
  std::error_code ec;
  if (comm.rank() == 0) std::filesystem::create_directories(out, ec);
  if (ec) throw IoError("cannot create the directory " + out + ": " + ec.message());
  // The corpus: its files, or standard input ('-') copied into --out first.
  const CorpusPlan corpus = prepare_corpus(comm, config, out);
  const CorpusLayout layout = CorpusLayout::scan(comm, corpus.options);
  const DocumentMode mode = document_mode(t.documents);
  const InvalidUtf8 policy = t.invalid_utf8 == "replace" ? InvalidUtf8::kReplace : InvalidUtf8::kError;
  std::vector<std::string> written;
  std::string what;
  if (t.tokenizer == "bpe") {
    BpeTrainOptions opt;
    opt.vocab_size = static_cast<size_t>(t.vocab_size);
    opt.min_frequency = static_cast<uint64_t>(t.min_frequency);
    BpeVocab vocab = learn_bpe_vocab(comm, layout, mode, policy, session.env().threads, opt);
    written = {out + "/" + std::string(kBpeVocabFile), out + "/" + std::string(kBpeMergesFile)};
    if (comm.rank() == 0) write_bpe_files(vocab, written[0], written[1]);
    what = std::to_string(vocab.tokens.size()) + " tokens, " + std::to_string(vocab.merges.size()) + " merges";
  } else if (t.tokenizer == "wordpiece") {
    WordPieceOptions basic;
    basic.lowercase = t.lowercase;
    WordPieceTrainOptions opt;
    opt.vocab_size = static_cast<size_t>(t.vocab_size);
    opt.min_frequency = static_cast<uint64_t>(t.min_frequency);
    const std::vector<std::string> tokens =
        learn_wordpiece_vocab(comm, layout, mode, policy, session.env().threads, basic, opt);
    written = {out + "/" + std::string(kWordPieceVocabFile)};
    if (comm.rank() == 0) WordPieceTokenizer(tokens, basic, written[0]).save(written[0]);
    what = std::to_string(tokens.size()) + " WordPiece tokens, " + (t.lowercase ? "uncased" : "cased");
  } else {
    std::vector<uint32_t> cps = learn_char_vocab(comm, layout, mode, policy);
    written = {out + "/" + std::string(kCharVocabFile)};
    if (comm.rank() == 0) CharTokenizer(cps).save(written[0]);
    what = std::to_string(cps.size()) + " characters";
  }
  comm.barrier();   // the files are complete before any rank returns
  if (comm.rank() == 0) {
    std::string files;
    for (const std::string& w : written) files += (files.empty() ? "" : " and ") + w;
    std::printf("wrote %s (%s) from %.1f MB of corpus in %.2f s\n", files.c_str(), what.c_str(),
                static_cast<double>(layout.total_bytes()) / 1e6, seconds_since(t0));
  }
  return 0;
}

void register_tokenize(CLI::App& app, CommandAction& chosen, TokenizeArgs& a) {
  CLI::App* cmd = add_command(
      app, "tokenize", "tokenize the corpus into token shards (the token stage of `loom train`)",
      "  Splits corpus.paths into documents (tokens.documents: blank_line, line or file) and\n"
      "  encodes each with tokens.tokenizer (bpe: tokens.vocab + tokens.merges, GPT-2's files,\n"
      "  <|endoftext|> after every document; wordpiece: BERT's vocab.txt in tokens.vocab,\n"
      "  tokens.lowercase for uncased/cased, [SEP] after every document; char: one token per\n"
      "  character, the vocabulary learned from the corpus when tokens.vocab does not exist).\n"
      "  Rank r tokenizes the\n"
      "  documents that start in its byte range of the corpus on run.threads threads and\n"
      "  writes them as its shard; the shards in order are the corpus in order, the same\n"
      "  token stream at every world size. A later run (or `loom train`) with the same corpus\n"
      "  files and tokenizer reuses the shards; a changed corpus file or tokenizer makes it\n"
      "  tokenize again. Prints the shards, tokens, documents and MB/s.\n",
      "  loom tokenize examples/gpt.toml\n"
      "  mpirun -np 2 loom tokenize RUN.toml --set tokens.dir=/data/wiki-tokens\n"
      "  loom tokenize --set 'corpus.paths=[\"shakespeare.txt\"]' --set tokens.tokenizer=char --set tokens.documents=file\n",
      kTokenFiles);
  add_config_options(cmd, a.config, a.set);
  cmd->callback([&chosen, &a] {
    chosen = [&a] { return with_session({a.config, a.set, true, "tokenize"}, run_tokenize_command); };
  });
}

void register_tokenizer_train(CLI::App& app, CommandAction& chosen, TokenizeArgs& a) {
  CLI::App* group = app.add_subcommand("tokenizer", "learn a tokenizer's vocabulary: `loom tokenizer train`");
  group->require_subcommand(1);
  CLI::App* cmd = add_command(
      *group, "train", "learn a BPE (or character) vocabulary from a corpus",
      "  Counts GPT-2's pre-tokenized pieces of every document of the corpus (CONFIG's\n"
      "  corpus.paths, or --corpus), each rank its byte range on run.threads threads; the\n"
      "  counts are summed exactly on rank 0, which learns the merges as Hugging Face\n"
      "  `tokenizers`' BpeTrainer does (ids: <|endoftext|>, the 256 bytes, then one per merge)\n"
      "  until the vocabulary has --vocab-size tokens (tokens.vocab_size) or no pair is seen\n"
      "  tokens.min_frequency times. The files are the same bytes at every world size and are\n"
      "  written crash-safely into --out: vocab.json + merges.txt (GPT-2's format), or with\n"
      "  --kind char the distinct characters as char_vocab.txt.\n"
      "  --kind wordpiece counts the words of BERT's basic tokenizer (tokens.lowercase: uncased\n"
      "  or cased) and learns BERT's vocab.txt as Hugging Face's WordPieceTrainer does: [PAD]\n"
      "  [UNK] [CLS] [SEP] [MASK], the alphabet (the 1000 most frequent characters), their\n"
      "  ##-continuations, then BPE merges with the ## prefix until --vocab-size tokens (fewer,\n"
      "  with a warning, when no pair is seen tokens.min_frequency times).\n",
      "  loom tokenizer train --corpus wiki.txt --vocab-size 8192 --out tok/\n"
      "  mpirun -np 2 loom tokenizer train RUN.toml --out tok/ --set tokens.documents=line\n"
      "  loom tokenizer train --corpus shakespeare.txt --kind char --out tok/\n"
      "  loom tokenizer train --corpus wiki.txt --kind wordpiece --vocab-size 30522 --out bert/\n",
      "FILES (in --out)\n"
      "  vocab.json, merges.txt         GPT-2's files (tokens.vocab, tokens.merges)\n"
      "  vocab.txt                      with --kind wordpiece (BERT's file: tokens.vocab)\n"
      "  char_vocab.txt                 with --kind char\n");
  cmd->add_option("config", a.train_config, "TOML config file (optional)")->check(CLI::ExistingFile);
  cmd->add_option("--set", a.train_set, "override one config key (repeatable)")->type_name("KEY=VALUE")->take_all();
  cmd->add_option("--corpus", a.corpus, "corpus files, directories or globs (corpus.paths)")->take_all();
  cmd->add_option("--vocab-size", a.vocab_size, "tokens in all (tokens.vocab_size)")->check(CLI::Range(257, 16777216));
  cmd->add_option("--out", a.out, "directory for the vocabulary files")->required();
  cmd->add_option("--kind", a.kind, "bpe, wordpiece or char (tokens.tokenizer)")
      ->check(CLI::IsMember({"bpe", "wordpiece", "char"}));
  cmd->add_option("--documents", a.documents, "blank_line, line or file (tokens.documents)")
      ->check(CLI::IsMember({"blank_line", "line", "file"}));
  cmd->callback([&chosen, &a] {
    chosen = [&a] {
      std::vector<std::string> set = a.train_set;
      if (!a.corpus.empty()) set.push_back("corpus.paths=" + toml_list(a.corpus));
      if (a.vocab_size > 0) set.push_back("tokens.vocab_size=" + std::to_string(a.vocab_size));
      if (!a.kind.empty()) set.push_back("tokens.tokenizer=" + a.kind);
      if (!a.documents.empty()) set.push_back("tokens.documents=" + a.documents);
      return with_session({a.train_config, set, false, "tokenizer train"},
                          [&a](Session& s) { return train_tokenizer(s, a.out); });
    };
  });
}

}  // namespace

void register_tokenize_commands(CLI::App& app, CommandAction& chosen) {
  static TokenizeArgs args;
  register_tokenize(app, chosen, args);
  register_tokenizer_train(app, chosen, args);
}

}  // namespace loom
