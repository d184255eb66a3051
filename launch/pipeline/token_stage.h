#pragma once
// The token stage of the transformer kinds (`loom train` for GPT, `loom tokenize`): the
// corpus (corpus.paths) becomes token shards, once, in the corpus order; later runs with the
// same inputs reuse them. Settings: [tokens] (launch/kinds/tokens.h).
//
// Note [Token stage]
// Documents: the corpus is split into documents by tokens.documents (blank_line: maximal
// runs of non-empty lines, the empty lines between them dropped; line: each non-empty line;
// file: each non-empty file, byte for byte). Each document is encoded alone and followed
// by the separator - <|endoftext|> for BPE, [SEP] for WordPiece, the delimiter's text
// ("\n\n", "\n", "") for the character tokenizer - so the stream is doc0 SEP doc1 SEP ...
// docN SEP.
// Ranks: rank r of W owns the documents whose first byte lies in the global byte range
// [total * r / W, total * (r + 1) / W) of the corpus (io/corpus_shard.h's byte space) and
// reads on past its range's end to finish its last document. Every document is owned by
// one rank and the ranks' parts are in corpus order, so part 0, part 1, ... concatenated is
// the same token stream at every world size (tests/e2e/tokens_test.cpp checks np 1 = np 2).
// Each rank encodes its documents in batches of about 8 MB on run.threads threads.
//
// Files, in DIR = tokens.dir (relative: inside the run directory):
//   part-RRRRR-of-WWWWW.tokens  rank R's part (io/token_shard.h's format), W files
//   manifest.txt                the parts in stream order with their token and document
//                               counts, the tokenizer kind, fingerprint and vocabulary size
//   tokens.fingerprint          the inputs (Note [Stage reuse] in pipeline_data.h): every
//                               corpus file's path, size and mtime; the tokenizer's kind and
//                               fingerprint; tokens.documents and tokens.invalid_utf8.
//                               Written last: it commits the stage.
//   char_vocab.txt              the learned character vocabulary (tokens.tokenizer = char,
//                               tokens.vocab = ''), re-learned when the corpus changes
// A run whose inputs are unchanged reuses the parts (whatever its world size); otherwise
// rank 0 deletes the fingerprint, every rank writes its part, rank 0 writes the manifest,
// removes parts of other world sizes, and writes the fingerprint. Reading a part checks
// its header, checksum and that its fingerprint is the tokenizer's (a shard of another
// tokenizer is refused naming the file and both fingerprints).
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "io/bpe_pretokenize.h"
#include "io/bpe_train.h"
#include "io/token_windows.h"
#include "io/tokenizer.h"
#include "io/wordpiece_train.h"
#include "launch/pipeline/pipeline_data.h"

namespace loom {

class Communicator;
class CorpusLayout;
class Session;
struct Config;
struct PipelineContext;

enum class DocumentMode : uint8_t { kBlankLine, kLine, kFile };
DocumentMode document_mode(std::string_view name);       // "blank_line" | "line" | "file"
std::string_view document_separator(DocumentMode mode);  // "\n\n" | "\n" | ""

// Note [Token layouts]
// kDocuments (GPT): the stream of Note [Token stage], documents joined by the separator.
// kSentences (BERT, WordPiece only): each document is split into sentences
// (io/sentence_split.h), each sentence's ids are followed by [SEP] and each document by
// [CLS] (Note [BERT token stream] in io/bert_examples.h). Sentences that encode to no
// token are dropped, and so are documents left without a sentence (they are not counted).
// The layout is part of the stage's fingerprint: shards of one layout are never read as
// the other.
enum class TokenLayout : uint8_t { kDocuments, kSentences };

// Documents handed to read_documents' callback; the views die when it returns.
struct DocumentBatch {
  std::span<const std::string_view> docs;
  const std::string* file = nullptr;   // the file they come from
  uint64_t offset = 0;                 // byte offset of docs[0] in that file
};
// Calls emit with the documents that start in global bytes [begin, end), in order, in
// batches of about batch_bytes (a batch never spans two files). Note [Token stage].
void read_documents(const CorpusLayout& layout, DocumentMode mode, uint64_t begin, uint64_t end,
                    size_t batch_bytes, const std::function<void(const DocumentBatch&)>& emit);

// What the token stage gives a model.
struct TokenData {
  std::shared_ptr<const Tokenizer> tokenizer;
  std::shared_ptr<const TokenStream> stream;   // every part, mapped read-only, in order
  std::string dir;                             // tokens.dir resolved
  std::vector<std::string> shard_paths;        // in stream order
  std::vector<uint64_t> shard_tokens;
  uint64_t tokens = 0;
  uint64_t documents = 0;
  double heldout_fraction = 0.1;               // tokens.heldout_fraction
  StageTime time;                              // seconds, reused
  double mb_per_s = 0;                         // corpus MB per second tokenized (0 when reused)
  size_t vocab_size() const { return tokenizer->vocab_size(); }
  // The training windows (shuffled from seed) and the held-out tail (Note [Token windows]).
  TokenSplits windows(int64_t seq_len, uint64_t seed) const;
};

// Collective: the token shards of the run's corpus, reused or written (Note [Token stage]).
TokenData token_stage(Communicator& comm, const Config& config, const std::string& run_dir, int threads,
                      TokenLayout layout = TokenLayout::kDocuments);
// The same for a model kind's recipe: records the stage "tokens" in the RunReport.
TokenData prepare_token_data(PipelineContext& ctx, TokenLayout layout = TokenLayout::kDocuments);

// Maps the parts listed in DIR/manifest.txt (a local call, any rank). DataError for a
// damaged manifest or part, or a part written by a tokenizer other than `tokenizer`.
std::shared_ptr<const TokenStream> open_token_shards(const std::string& dir, const Tokenizer& tokenizer);

// Collective: GPT-2 pieces of every rank's documents counted (run.threads threads, one table
// each), the serialized tables exchanged with allgatherv and summed exactly on rank 0 in rank
// order, BPE learned there (Note [BPE training order]) and broadcast as the files' text: the
// same vocabulary at every world size. Returns it on every rank.
BpeVocab learn_bpe_vocab(Communicator& comm, const CorpusLayout& layout, DocumentMode mode,
                         InvalidUtf8 invalid_utf8, int threads, const BpeTrainOptions& options);
// Collective: BERT's basic-tokenizer words of every rank's documents counted (`basic`'s
// options: cased or uncased), summed exactly on rank 0 as learn_bpe_vocab does, WordPiece
// learned there (Note [WordPiece training order]; a warning when the corpus cannot fill
// options.vocab_size) and broadcast as vocab.txt's text. Returns the tokens in id order on
// every rank: the same at every world size.
std::vector<std::string> learn_wordpiece_vocab(Communicator& comm, const CorpusLayout& layout, DocumentMode mode,
                                               InvalidUtf8 invalid_utf8, int threads, const WordPieceOptions& basic,
                                               const WordPieceTrainOptions& options);
// Collective: the distinct characters of the corpus (and of the separator).
std::vector<uint32_t> learn_char_vocab(Communicator& comm, const CorpusLayout& layout,
                                       DocumentMode mode, InvalidUtf8 invalid_utf8);

// Collective: `loom tokenize` - the token stage alone, with a summary line.
int run_tokenize_command(Session& session);

}  // namespace loom
