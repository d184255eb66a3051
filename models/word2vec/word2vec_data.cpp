// Reading a shard as word ids (word2vec_data.h).
#include "models/word2vec/word2vec_data.h"

#include <omp.h>

#include <exception>
#include <utility>

#include "core/work_meter.h"
#include "io/tokenize.h"

namespace loom {

namespace {

// Appends the words of shard (part, parts) to `out`, starting a sentence at every line end
// and after max_words words.
void read_part(const CorpusLayout& layout, const CorpusOptions& options, const Vocab& vocab, int part, int parts,
               int64_t max_words, TokenizedShard& out) {
  CorpusShard shard(layout, options, part, parts);
  work_meter::add_total(static_cast<int64_t>(shard.bytes_total()));
  int64_t open = 0;   // words in the current sentence
  auto close = [&] {
    if (open > 0) out.starts.push_back(out.words());
    open = 0;
  };
  TextChunk chunk;
  while (shard.next(chunk)) {
    work_meter::advance(static_cast<int64_t>(chunk.end - chunk.begin));
    for_each_token(
        chunk.text, options.max_token_bytes,
        [&](std::string_view token) {
          const int32_t id = vocab.find(token);
          if (id < 0) return;
          out.ids.push_back(id);
          if (++open == max_words) close();
        },
        close);
  }
  close();
}

}  // namespace

TokenizedShard read_tokenized_shard(const CorpusLayout& layout, const CorpusOptions& options, const Vocab& vocab,
                                    int rank, int world, int threads, int64_t max_sentence_words) {
  std::vector<TokenizedShard> parts(static_cast<size_t>(threads));
  std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));
#pragma omp parallel for num_threads(threads) schedule(static, 1) if (threads > 1)
  for (int t = 0; t < threads; ++t) {
    try {
      // Filled here and moved: the parts' vector ends, written per word, share cache lines.
      TokenizedShard mine;
      mine.starts.push_back(0);
      read_part(layout, options, vocab, rank * threads + t, world * threads, max_sentence_words, mine);
      parts[static_cast<size_t>(t)] = std::move(mine);
    } catch (...) {
      errors[static_cast<size_t>(t)] = std::current_exception();
    }
  }
  for (const std::exception_ptr& e : errors)
    if (e) std::rethrow_exception(e);
  TokenizedShard out;
  out.starts.push_back(0);
  for (TokenizedShard& p : parts) {
    const int64_t base = out.words();
    out.ids.insert(out.ids.end(), p.ids.begin(), p.ids.end());
    for (size_t s = 1; s < p.starts.size(); ++s) out.starts.push_back(base + p.starts[s]);
    std::vector<int32_t>().swap(p.ids);
  }
  return out;
}

}  // namespace loom
