#pragma once
// Shared by the GloVe MPI tests: the planted corpus (written once by rank 0 into a shared
// temp dir), its vocabulary (io/vocab) and co-occurrence (counted here), and a
// train-then-evaluate helper.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "core/param_store.h"
#include "dist/mpi_communicator.h"
#include "models/glove/cooccur_build.h"
#include "io/export.h"
#include "io/vocab.h"
#include "models/embedding_eval.h"
#include "models/glove/glove.h"
#include "io/planted_corpus.h"
#include "tests/support/test_support.h"

namespace loom::test {

inline Communicator& world() { return MpiCommunicator::world(); }

struct PlantedData {
  std::string corpus, questions;
  Vocab vocab;
  std::vector<CooccurEntry> entries;   // this rank's partition
};

// GloVe's co-occurrence counted directly (the definition in io/cooccur.h: within a line,
// kept tokens at distance d <= window add 1/d to both (a, b) and (b, a)), this rank's
// rows (row % world == rank) in a shuffled order from (seed, rank). Independent of
// io/cooccur's machinery on purpose: these tests check GloVe, not the counting.
inline std::vector<CooccurEntry> count_cooccurrence(const std::string& path, const Vocab& vocab, int window) {
  std::map<std::pair<int32_t, int32_t>, double> counts;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::vector<int32_t> ids;
    for (std::string w; words >> w;)
      if (int32_t id = vocab.find(w); id >= 0) ids.push_back(id);
    for (size_t i = 0; i < ids.size(); ++i) {
      for (size_t j = i + 1; j < ids.size() && j - i <= static_cast<size_t>(window); ++j) {
        counts[{ids[i], ids[j]}] += 1.0 / static_cast<double>(j - i);
        counts[{ids[j], ids[i]}] += 1.0 / static_cast<double>(j - i);
      }
    }
  }
  std::vector<CooccurEntry> mine;
  for (const auto& [key, value] : counts)
    if (key.first % world().size() == world().rank()) mine.push_back({key.first, key.second, value});
  std::mt19937_64 gen(1000 + static_cast<uint64_t>(world().rank()));
  std::shuffle(mine.begin(), mine.end(), gen);
  return mine;
}

// Vocabulary (io/vocab, as the pipeline builds it) and this rank's co-occurrence rows:
// counted here, or by io/cooccur's build_cooccurrence (large corpora, measurements).
inline void build_matrix(PlantedData* d, int64_t min_count, int window, bool use_io) {
  CorpusOptions corpus;
  corpus.paths = {d->corpus};
  VocabOptions vo;
  vo.min_count = min_count;
  d->vocab = build_vocab(world(), corpus, vo);
  if (!use_io) {
    d->entries = count_cooccurrence(d->corpus, d->vocab, window);
    return;
  }
  CooccurOptions co;
  co.window = window;
  co.memory_gb = 1.0;
  co.seed = 11;
  d->entries = build_cooccurrence(world(), d->vocab, corpus, co, "").entries;
}

inline const PlantedData& planted_data() {
  static TempDir tmp;
  static PlantedData data = [] {
    char path[512] = {};
    std::snprintf(path, sizeof(path), "%s", tmp.path().c_str());
    world().broadcast(Tensor::of(reinterpret_cast<uint8_t*>(path), sizeof(path)), 0);
    PlantedData d;
    d.corpus = std::string(path) + "/planted.txt";
    d.questions = std::string(path) + "/planted-questions.txt";
    if (world().rank() == 0) generate_planted_corpus(d.corpus, d.questions, 7, 20000);
    world().barrier();
    build_matrix(&d, 1, 8, false);
    return d;
  }();
  return data;
}

// The options the planted-corpus tests train with (measured: Note [GloVe synchronisation]).
inline GloveOptions planted_options() {
  GloveOptions o;
  o.dim = 50;
  o.x_max = 10;
  o.epochs = 25;
  o.threads = 1;
  o.step_nnz = 4096;
  o.seed = 99;
  return o;
}

inline EmbeddingTable table_of(const Glove& g) {
  EmbeddingTable t;
  t.words = g.vocabulary().tokens();
  t.vectors = g.output_vectors();
  t.dim = g.output_dim();
  return t;
}

struct TrainOutcome {
  double last_epoch_loss = 0;   // summed over all ranks, per non-zero
  double accuracy = 0;          // planted analogies, total
  double seconds = 0;           // training only
  double nnz_per_s = 0;         // non-zeros trained per second, all ranks
};

inline TrainOutcome train_on(const PlantedData& d, const GloveOptions& options) {
  std::unique_ptr<Glove> g = make_glove(options, world(), d.vocab, d.entries);
  TrainOutcome out;
  double loss = 0, count = 0;
  world().barrier();
  const auto start = std::chrono::steady_clock::now();
  for (int64_t s = 0; s < g->total_steps(); ++s) {
    StepStats st = g->train_step(StepContext{s, &world()});
    if (s >= g->total_steps() - g->steps_per_epoch()) {
      loss += st.loss_sum;
      count += static_cast<double>(st.examples);
    }
  }
  out.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  double sums[2] = {loss, count};
  world().allreduce(Tensor::of(sums, 2), ReduceOp::kSum);
  out.last_epoch_loss = sums[0] / sums[1];
  out.nnz_per_s = static_cast<double>(g->tokens_seen()) / out.seconds;
  AnalogyResult ar = evaluate_analogy(table_of(*g), d.questions);
  out.accuracy = ar.all.accuracy();
  if (std::getenv("LOOM_GLOVE_VERBOSE") && world().rank() == 0) {
    std::printf("vocab %d nnz(rank0) %zu loss %.5f\n%s", d.vocab.size(), d.entries.size(), out.last_epoch_loss, format_analogy(ar).c_str());
    for (const char* w : {"paris", "king", "cats", "bigger"}) {
      std::printf("%s:", w);
      for (const Neighbor& n : nearest_neighbors(table_of(*g), w, 6)) std::printf(" %s(%.2f)", n.word.c_str(), n.cosine);
      std::printf("\n");
    }
  }
  return out;
}

inline TrainOutcome train_planted(const GloveOptions& options) { return train_on(planted_data(), options); }

}  // namespace loom::test
