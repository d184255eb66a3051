#pragma once
// A rank's corpus shard as word ids, read once before training and kept in memory for all
// epochs (4 bytes per word: wiki17m's 17.2 M words are 69 MB in all ranks together).
//
// Like word2vec, words outside the vocabulary are dropped (they neither count nor break a
// window) and a sentence ends at a line end; lines longer than max_sentence_words (word2vec:
// 1000) are cut into sentences of that many words. Empty sentences are not stored.
#include <cstdint>
#include <vector>

#include "io/corpus_shard.h"
#include "io/vocab.h"

namespace loom {

struct TokenizedShard {
  std::vector<int32_t> ids;     // (n,) word ids in corpus order
  std::vector<int64_t> starts;  // (sentences + 1,) sentence s is ids[starts[s], starts[s+1])

  int64_t words() const { return static_cast<int64_t>(ids.size()); }
  int64_t sentences() const { return static_cast<int64_t>(starts.size()) - 1; }
};

// Reads the shard of (rank, world) with `threads` threads: thread t reads the sub-shard
// (rank * threads + t, world * threads); the sub-shards tile the rank's shard, so the
// result does not depend on `threads` (except that a line longer than
// corpus.max_line_bytes that crosses a sub-shard boundary also ends a sentence there).
// Not collective.
TokenizedShard read_tokenized_shard(const CorpusLayout& layout, const CorpusOptions& options, const Vocab& vocab,
                                    int rank, int world, int threads, int64_t max_sentence_words = 1000);

}  // namespace loom
