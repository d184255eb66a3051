#pragma once
// Word2Vec: skip-gram and CBOW (Mikolov et al. 2013) with negative sampling and/or
// hierarchical softmax, as a loom Model. Each rank trains on its corpus shard (read once as
// word ids, word2vec_data.h) with plain SGD, Hogwild threads inside a rank, batched
// negative sampling (Note [Batched negative sampling] in word2vec_kernel.h), and replicas
// kept close by a synchronisation at the end of every step (Note [word2vec
// synchronisation] in word2vec_sync.cpp).
//
// Parameters (DESIGN.md names): syn0 (V, D) input vectors, the exported ones, uniform in
// [-0.5, 0.5) / D; syn1neg (V, D) with negative > 0 and syn1 (V-1, D) with hs, both zero.
// Plain SGD has no optimizer slots.
//
// As word2vec does: sentences end at line ends (or after 1000 words); each epoch drops
// frequent words with probability 1 - subsample_keep() (word2vec_kernel.h) before the
// windows are formed; each centre word uses a window of b words each side, b uniform in
// [1, window]; the learning rate decays linearly with the words processed (all words of
// the shard, subsampled ones included) of all ranks and all epochs, to alpha * 1e-4.
//
// A step is one slice of every rank's shard: steps_per_epoch S = ceil(largest shard /
// step_words), equal on all ranks; rank r's step s trains the sentences that start in
// words [s n_r / S, (s+1) n_r / S) of its shard. Thread t of T trains the t-th part of
// that slice (split the same way) with its own RNG stream (seed, rank * 4096 + t, kData).
//
// Determinism: with threads = 1 a run depends on the seed and the world size only, and
// resume at the same world size is bit-exact (the checkpoint stores the cursor and every
// thread's RNG position; the learning rate is a function of the cursor). With threads > 1
// the threads update shared rows without locks (Hogwild), so results depend on timing.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/buffer.h"
#include "core/param_store.h"
#include "core/rng.h"
#include "dist/peer_memory.h"
#include "io/vocab.h"
#include "models/model.h"
#include "models/replica_sync.h"
#include "models/word2vec/huffman.h"
#include "models/word2vec/noise_table.h"
#include "models/word2vec/word2vec_data.h"
#include "models/word2vec/word2vec_kernel.h"

namespace loom {

enum class Word2VecArch { kSkipGram, kCbow };
// How replicas are kept close (Note [word2vec synchronisation]).
enum class Word2VecSync {
  kDelta,     // every rank adds the sum of all ranks' changes since the last sync
  kAverage,   // parameters are averaged over ranks
};

Word2VecArch parse_word2vec_arch(std::string_view name);   // "skipgram" | "cbow"; ConfigError
Word2VecSync parse_word2vec_sync(std::string_view name);   // "delta" | "average"; ConfigError
const char* word2vec_arch_name(Word2VecArch arch);
const char* word2vec_sync_name(Word2VecSync sync);

// Plain options; the [word2vec] config section (launch/kinds/word2vec.h) has the same keys,
// checked there (Note [Where word2vec options are checked] in word2vec.cpp).
// Defaults are the original word2vec tool's (CBOW, 100, window 5, negative 5, sample 1e-3,
// 5 iterations, alpha 0.05 for CBOW and 0.025 for skip-gram).
struct Word2VecOptions {
  Word2VecArch arch = Word2VecArch::kCbow;
  int64_t dim = 100;            // D
  int64_t window = 5;           // largest window each side
  int64_t negative = 5;         // K noise words per prediction; 0 = no negative sampling
  bool hs = false;              // hierarchical softmax
  bool shared_negatives = true;  // skip-gram: one draw of negatives per window (else per pair)
  double sample = 1e-3;         // subsampling threshold; 0 = off
  double alpha = 0;             // initial learning rate; 0 = 0.05 (CBOW) / 0.025 (skip-gram)
  double min_alpha_ratio = 1e-4;   // floor of the learning rate, relative to alpha
  double ns_power = 0.75;       // noise distribution count^ns_power
  int64_t epochs = 5;
  int threads = 1;              // Hogwild threads per rank; 1 = deterministic
  Word2VecSync sync = Word2VecSync::kDelta;
  int64_t step_words = int64_t{1} << 18;   // words of the largest shard per step = sync period
  // With kDelta: the rows of words expected to be kept at least this many times in one
  // rank's step (hot rows) are averaged across ranks instead of summed; 0 = sum every row;
  // < 0 = 100 for CBOW, 0 for skip-gram (Note [word2vec synchronisation]).
  double average_above = -1;
  // With kDelta: the rows of words expected to be kept fewer than `rare_below` times in one
  // rank's step (rare rows) are summed only at every `rare_every`-th step, the others at
  // every step; rare_every 1 = every row every step (Note [word2vec synchronisation],
  // "Rare rows").
  double rare_below = 5;
  int64_t rare_every = 4;
  int64_t max_sentence_words = 1000;
  // Negative sampling: prefetch the next window's rows (Note [Prefetching the next window]
  // in word2vec.cpp); the same bits either way. Config word2vec.prefetch.
  bool prefetch = true;
  // All ranks on one host: sum the replicas in each other's memory (dist/peer_memory.h)
  // rather than by MPI allreduce. Config comm.peer_memory.
  bool peer_memory = true;
  uint64_t seed = 1234;

  double initial_alpha() const { return alpha > 0 ? alpha : (arch == Word2VecArch::kCbow ? 0.05 : 0.025); }
  double hot_threshold() const { return average_above >= 0 ? average_above : (arch == Word2VecArch::kCbow ? 100 : 0); }
};

class Word2Vec final : public Model {
 public:
  // Use make_word2vec().
  Word2Vec(const Word2VecOptions& options, Communicator& comm, const Vocab& vocab, TokenizedShard data);
  ~Word2Vec() override;

  std::string_view kind() const override { return "word2vec"; }
  ParamStore& params() override { return params_; }
  int64_t total_steps() const override { return total_steps_; }
  int64_t steps_per_epoch() const override { return steps_per_epoch_; }
  std::string_view item_unit() const override { return "words"; }
  StepStats train_step(const StepContext& ctx) override;
  std::vector<OptimizerSlot> optimizer_slots() override { return {}; }
  std::vector<RankState> rank_state() const override;
  std::optional<VocabView> vocab() const override;
  int64_t tokens_seen() const override { return words_seen_; }
  void restore(const CheckpointReader& reader, int64_t step) override;
  std::vector<std::string> shape_keys() const override { return {"word2vec.dim", "word2vec.hs"}; }

  // The exported vectors: syn0, (V, D) row-major.
  std::vector<float> output_vectors() const;
  const Word2VecOptions& options() const { return options_; }
  const Vocab& vocabulary() const { return vocab_; }
  int64_t epoch() const override { return epoch_; }
  int64_t epoch_step() const override { return slice_; }
  // The learning rate after `progress` words of all ranks.
  float learning_rate(double progress) const;
  int64_t total_words() const { return total_words_; }
  // Hot rows (Note [word2vec synchronisation]): syn0 / syn1neg rows [0, hot_words()) and
  // syn1 rows [V - 1 - hot_nodes(), V - 1), averaged at a kDelta sync.
  int64_t hot_words() const { return hot_words_; }
  int64_t hot_nodes() const { return hot_nodes_; }
  // Rare rows: syn0 / syn1neg rows [rare_from(), V), summed only at the steps after which
  // full_sync_after() is true (every rank's replica is then the same).
  int64_t rare_from() const { return rare_rows_from_; }
  bool full_sync_after(int64_t step) const;
  bool checkpoint_ready(int64_t steps_done) const override { return steps_done == 0 || full_sync_after(steps_done - 1); }
  // Seconds this rank spent since construction waiting for the other ranks at the end of
  // its steps, and in the synchronisation itself.
  double wait_seconds() const { return wait_s_; }
  double sync_seconds() const { return sync_s_; }
  // The sums of a sync run through PeerMemory (Note [Owner-computes sync]), not MPI.
  bool sums_in_peer_memory() const { return peers_ != nullptr; }
  const HuffmanTree& huffman() const { return huffman_; }
  const NoiseTable& noise() const { return noise_; }
  // The probability that subsampling keeps word w in an epoch (from its 32-bit threshold).
  double keep_probability(int32_t w) const { return static_cast<double>(keep_[static_cast<size_t>(w)]) * 0x1.0p-32; }

 private:
  struct ThreadState;
  void init_params();
  void setup_steps();
  int64_t slice_begin(int64_t n, int64_t slice) const { return n * slice / steps_per_epoch_; }
  StepStats train_range(ThreadState& t, int64_t word_begin, int64_t word_end, double global_begin,
                        double global_words);
  double train_sentence(ThreadState& t, int64_t sentence, float lr, int64_t* examples);
  void synchronize(bool full);
  void plan_sync();
  void collect_touched();   // touched_ <- OR of the threads' maps, which are cleared
  void seek_rng(const std::vector<uint64_t>& positions);   // (threads,)

  Word2VecOptions options_;
  Communicator& comm_;
  Vocab vocab_;
  TokenizedShard data_;
  std::vector<int64_t> shard_words_;     // (world,) every rank's n_r
  int64_t total_words_ = 0;              // sum of n_r: words per epoch, all ranks
  HuffmanTree huffman_;                  // with hs
  NoiseTable noise_;                     // with negative > 0
  std::vector<uint64_t> keep_;           // (V,) keep a word when a 32-bit draw < keep_[w] (2^32 = always)
  ParamStore params_;
  Word2VecView view_;
  Buffer base_;                          // (total_elements) parameters at the last sync (kDelta, world > 1)
  int64_t hot_words_ = 0, hot_nodes_ = 0;
  // How a segment of the parameter buffer is synchronised (kDelta).
  enum class SyncKind { kSum, kAverage, kSumTouchedRows };
  struct SyncSegment { int64_t offset, length; SyncKind kind; };
  std::vector<SyncSegment> sync_segments_;   // kDelta: [0, total_elements) in order
  std::vector<uint8_t> touched_;             // (V,) syn0 rows any thread of this rank changed since the last sync
  std::vector<int32_t> touched_rows_;        // rows of the kSumTouchedRows segment any rank changed
  std::vector<float> sync_scratch_;          // one piece of packed rows
  std::unique_ptr<PeerMemory> peers_;        // all ranks on one host: the sums skip MPI
  std::vector<std::vector<ElementRange>> owned_;   // with peers_: each rank's elements of this sync
  PeerSumScratch peer_scratch_;
  int64_t rare_rows_from_ = 0;               // syn0 / syn1neg rows from here on are rare
  std::vector<std::unique_ptr<ThreadState>> threads_;
  int64_t steps_per_epoch_ = 1;
  int64_t total_steps_ = 1;
  int64_t epoch_ = 0;      // cursor: epoch of the next step
  int64_t slice_ = 0;      // cursor: slice of the next step within the epoch
  int64_t words_seen_ = 0; // words trained, all ranks
  double wait_s_ = 0;      // seconds waiting for the other ranks before synchronize()
  double sync_s_ = 0;      // seconds in synchronize()
};

// The hot rows of a vocabulary (Note [word2vec synchronisation]): expected[w] is how many
// times word w is expected to be kept in one rank's step (vocabulary order: counts
// descending); returns how many leading words reach `above` (0 = none), and through
// `nodes` how many inner nodes at the end of the Huffman tree's numbering (the root is
// V - 2) are each visited at least `above` times (tree null or above 0: 0).
int64_t word2vec_hot_rows(const std::vector<double>& expected, double above, const HuffmanTree* tree,
                          int64_t* nodes);

// Declares and initialises the parameters, builds the tables. Collective (exchanges the
// shard sizes).
std::unique_ptr<Word2Vec> make_word2vec(const Word2VecOptions& options, Communicator& comm, const Vocab& vocab,
                                        TokenizedShard data);

}  // namespace loom
