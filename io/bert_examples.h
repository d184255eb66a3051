#pragma once
// The BERT pre-training data: sentence-pair examples with masked-LM targets, built from a
// tokenized corpus in memory-mapped token shards, in one global order that depends on the
// seed alone (DESIGN.md, "Transformers read data by one global order").
//
// Note [BERT token stream]
// The token stage writes, per document, each sentence's WordPiece ids followed by [SEP],
// and after the document's last [SEP] one [CLS] that marks the document's end:
//     document "S1. S2."  ->  ids(S1) [SEP] ids(S2) [SEP] [CLS]
// (sentences from split_sentences(), io/sentence_split.h). So every [SEP] closes a
// non-empty sentence, every [CLS] closes a non-empty document right after a [SEP], and a
// range of documents ends with [CLS]. [PAD] and [MASK] never occur in the stream (the
// examples add them). BertExamples checks all of this once, while it builds its table, and
// refuses a stream that breaks it with a DataError naming the shard file, the token's
// index in it and its stream offset.
//
// Note [BERT examples]
// Instances follow create_instances_from_document of google-research/bert's
// create_pretraining_data.py, run once over the documents in order (dupe_factor 1) with
// one sequential RNG, Rng(seed, split, kData) (split 0 training, 1 held-out): the same
// table on every rank, at any world size, however often it is built. Per document:
//   * max_num_tokens = max_seq_len - 3; the target length is max_num_tokens, or with
//     probability short_seq_prob randint(2, max_num_tokens) (both ends included, as
//     Python's randint), drawn once per document;
//   * sentences accumulate into a chunk until its tokens reach the target or the document
//     ends; A = the chunk's first a_end sentences, a_end = randint(1, len - 1) (1 for a
//     chunk of one sentence);
//   * loom's one change to the recipe: the original makes every chunk of one sentence
//     NotNext (a sentence that reaches the target alone, a document's last sentence left
//     alone), so NotNext outnumbers IsNext on real text (58 % of the training pairs and 74 %
//     of the held-out ones in bench/bert.sh's Wikipedia run at max_seq_len 128). loom tops up
//     such a chunk with the document's next sentence (a chunk of two, a_end = 1, the draws
//     as below); a document's last sentence left alone (or a document of one sentence)
//     draws NotNext with probability random_next_prob and keeps the sentence whole as A,
//     else is split into A = its first cut tokens and B = the rest, cut = randint(1,
//     len - 1) (IsNext). Only a last sentence of one token is NotNext by force;
//   * with probability random_next_prob, or always for a chunk of one sentence, B is
//     random (NotNext): from a random OTHER document (one uniform draw over the others,
//     where the original retries 10 times and may end on the same document), sentences
//     from a random start sentence until B reaches target - len(A) tokens or that document
//     ends; the chunk's unused sentences go back and start the next chunk. Otherwise
//     (IsNext) B = the rest of the chunk;
//   * truncate_seq_pair: while len(A) + len(B) > max_num_tokens, one token goes from the
//     longer segment (B on a tie), from its front or back with probability 1/2 each.
// The table keeps no tokens: per instance, A's and B's stream ranges after truncation (a
// range may hold the [SEP]s between its sentences; example() skips them) and the label,
// 24 bytes. Sentence offsets live only while the table is built.
//
// Example global_index: epoch = global_index / N (N = examples_per_epoch()); training
// visits instance FeistelPermutation(N, rng_key(seed, 0, kShuffle))(epoch, global_index % N)
// (a new order each epoch over the same pairs); held-out visits them in table order.
// The sequence is [CLS] A [SEP] B [SEP] then [PAD] up to max_seq_len. Masking, as the
// original's create_masked_lm_predictions but drawn per example from
// Rng(seed, 2 * global_index + split, kMask) - the same at any world size and after a
// resume, and new each epoch (dynamic masking, as RoBERTa):
//   * num_to_predict = min(max_predictions_per_seq, max(1, round(length * masked_lm_prob))),
//     length counting [CLS] and both [SEP]s as the original's len(tokens) does, round
//     half to even as Python's; at most the len(A) + len(B) candidates;
//   * the positions are a uniform subset of A's and B's positions (never [CLS], [SEP],
//     [PAD]; an [UNK] in the text may be chosen, as in the original);
//   * each chosen position: with probability 0.8 [MASK]; else with probability 1/2 kept,
//     else a random id uniform over [0, vocab_size) less the five special ids (the
//     original draws over the whole vocabulary; a random [CLS], [SEP], [PAD] or [MASK]
//     would look like structure, so loom never puts one there).
// Outputs: positions ascending, padded with 0 (a valid index, as the original pads
// masked_lm_positions) with label -1 marking padding; the dense labels (T) hold the
// original id at chosen positions and -1 elsewhere (Hugging Face uses -100: map negatives).
//
// Held-out split (split_bert_examples): the last heldout_fraction of the stream's tokens,
// widened back to the start of the document holding its first token, so the split falls
// between documents: training pairs never read a held-out document, not even as a random
// B, and held-out pairs never read a training one. Batches: rank_slice() of
// io/token_windows.h, unchanged.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "io/feistel_permutation.h"
#include "io/token_windows.h"

namespace loom {

struct BertSpecialIds {
  int32_t pad = -1, unk = -1, cls = -1, sep = -1, mask = -1;   // distinct, in [0, vocab_size)
};

struct BertDataOptions {
  int64_t max_seq_len = 128;              // T: [CLS] A [SEP] B [SEP] and padding
  double short_seq_prob = 0.1;
  double masked_lm_prob = 0.15;
  int64_t max_predictions_per_seq = 20;   // P
  double random_next_prob = 0.5;
  uint64_t seed = 0;                      // run.seed
  int32_t vocab_size = 0;                 // V: random replacements are drawn below it
  BertSpecialIds special;
};

// One example, written by BertExamples::example() into arrays sized once (allocation-free).
struct BertExample {
  std::vector<int32_t> input_ids;       // (T) [CLS] A [SEP] B [SEP] [PAD]..., after masking
  std::vector<int32_t> segment_ids;     // (T) 0 for [CLS] A [SEP], 1 for B [SEP], 0 padding
  std::vector<int32_t> labels;          // (T) original id where predicted, -1 elsewhere
  std::vector<int32_t> mlm_positions;   // (P) ascending; 0 after num_predictions
  std::vector<int32_t> mlm_labels;      // (P) original ids; -1 after num_predictions
  int64_t length = 0;                   // tokens before [PAD]: the attention mask's ones
  int64_t a_length = 0;                 // tokens of A (B has length - a_length - 3)
  int64_t num_predictions = 0;
  int32_t nsp_label = 0;                // 0 IsNext, 1 NotNext (BertForPreTraining's label)

  BertExample() = default;
  explicit BertExample(const BertDataOptions& options) { resize(options); }
  void resize(const BertDataOptions& options);
};

// An instance as stream ranges (after truncation), for tests and tools.
struct BertPair {
  uint64_t a_begin = 0, a_end = 0;   // [a_begin, a_end): A's tokens and the [SEP]s between them
  uint64_t b_begin = 0, b_end = 0;
  bool random_next = false;          // NotNext
};

class BertExamples {
 public:
  // The instance table of the documents in stream tokens [begin, end) (Note [BERT examples]);
  // begin is 0 or follows a [CLS]. ConfigError for options out of range; DataError for a
  // stream that breaks Note [BERT token stream] or holds fewer than two documents (NotNext
  // needs another). One sequential pass: about 0.8 s for 26 M tokens (bert_examples_bench).
  BertExamples(std::shared_ptr<const TokenStream> stream, uint64_t begin, uint64_t end,
               const BertDataOptions& options, WindowOrder order = WindowOrder::kShuffled,
               const std::string& split_name = "training");

  int64_t examples_per_epoch() const { return static_cast<int64_t>(table_.size()); }
  // Writes example global_index (any value >= 0) into out (sized for these options).
  // Const and thread-safe; allocates nothing.
  void example(int64_t global_index, BertExample& out) const;

  // The instance (table row) that global_index visits.
  int64_t instance_of(int64_t global_index) const;
  BertPair pair(int64_t instance) const;

  const BertDataOptions& options() const { return options_; }
  uint64_t begin() const { return begin_; }
  uint64_t end() const { return end_; }
  int64_t documents() const { return documents_; }
  int64_t sentences() const { return sentences_; }
  size_t table_bytes() const { return table_.capacity() * sizeof(Instance); }
  const TokenStream& stream() const { return *stream_; }

 private:
  struct Instance {
    uint64_t a_begin;
    uint64_t b_begin;
    uint32_t a_span;           // stream tokens from a_begin, [SEP]s between sentences included
    uint32_t b_span_and_next;  // (b_span << 1) | random_next
  };
  class Builder;

  // Copies the non-[SEP] tokens of [begin, begin + span) to ids[at...]; returns the new at.
  int64_t copy_segment(uint64_t begin, uint32_t span, int32_t* ids, int64_t at) const;
  void mask(int64_t global_index, BertExample& out) const;
  int32_t random_token(uint64_t r) const;

  std::shared_ptr<const TokenStream> stream_;
  uint64_t begin_ = 0, end_ = 0;
  BertDataOptions options_;
  WindowOrder order_ = WindowOrder::kShuffled;
  uint64_t split_id_ = 0;              // 0 training (shuffled), 1 held-out (sequential)
  std::vector<Instance> table_;        // (N)
  FeistelPermutation permutation_;
  int32_t sorted_special_[5] = {};     // ascending, for random_token()
  int64_t documents_ = 0, sentences_ = 0;
};

struct BertSplits {
  BertExamples train;                   // shuffled, documents in [0, split)
  std::optional<BertExamples> heldout;  // sequential, documents in [split, N); none for 0
  uint64_t split = 0;                   // stream offset of the first held-out document
};

// heldout_fraction in [0, 1) (ConfigError otherwise). The split is the start of the document
// holding token N - floor(N * heldout_fraction); DataError when either side has fewer than
// two documents.
BertSplits split_bert_examples(std::shared_ptr<const TokenStream> stream, double heldout_fraction,
                               const BertDataOptions& options);

}  // namespace loom
