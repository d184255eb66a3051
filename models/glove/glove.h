#pragma once
// Glove: GloVe (Pennington et al. 2014) as a loom Model. Weighted least squares on the
// co-occurrence non-zeros this rank owns, per-example AdaGrad (Note [GloVe AdaGrad] in
// glove_kernel.h), Hogwild threads inside a rank, and replicas kept equal across ranks by
// a synchronisation at the end of every step (Note [GloVe synchronisation] in glove_sync.cpp).
//
// Parameters (DESIGN.md names): W (V, D), W_ctx (V, D), b (V,), b_ctx (V,). Optimizer
// slots: "gradsq" of each, shaped like the parameter.
//
// Rank r owns the rows i with i % W == r (the co-occurrence partition). With sync
// "stratified" its records are grouped, in their order, into W blocks by column group
// c = j % W; an epoch has W phases, and in phase k rank r trains block c = (r + k) % W,
// so that no two ranks touch the same W, W_ctx, b or b_ctx row in a phase. With the other
// schemes the partition is one block and an epoch one phase. A phase has P steps,
// P = ceil(largest block of any rank / step_nnz), so steps_per_epoch S = phases * P is
// equal on all ranks; step p of a phase trains records [p n / P, (p+1) n / P) of the
// block (n its size). The records keep the (already shuffled) order the co-occurrence
// stage produced. GloVe's reference visits them in that order every epoch; with
// `reshuffle` (the default) a block is cut into chunks of kChunk records and the chunks
// are visited in a fresh order every epoch (Philox keyed by (seed, rank, kShuffle), at
// position epoch << 32): steps then cover chunk positions, [p C / P, (p+1) C / P) of the
// C chunks, and the block's last, partial chunk always comes last, so that every rank
// can count the records of any rank's step from the block sizes alone.
//
// Determinism: with threads = 1 a run depends on the seed and the world size only (two
// runs give bit-identical parameters; resume at the same world size is bit-exact). With
// threads > 1 the threads update shared rows without locks (Hogwild), so results depend
// on timing; that is named in the config (glove.threads) and the README.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/buffer.h"
#include "core/param_store.h"
#include "io/cooccur.h"
#include "io/vocab.h"
#include "models/glove/glove_kernel.h"
#include "models/model.h"

namespace loom {

// How replicas are kept equal (Note [GloVe synchronisation]).
enum class GloveSync {
  kStratified,  // disjoint (row group, column group) blocks per phase, changes summed
  kDelta,     // every rank adds the sum of all ranks' changes since the last sync
  kAverage,   // parameters and accumulators are averaged over ranks
};
// What export writes: W + W_ctx (sum), W alone (w), [W, W_ctx] (concat, 2 D columns).
enum class GloveOutput { kSum, kW, kConcat };

GloveSync parse_glove_sync(std::string_view name);  // "stratified" | "delta" | "average"; ConfigError
GloveOutput parse_glove_output(std::string_view name);   // "sum" | "w" | "concat"; ConfigError
const char* glove_sync_name(GloveSync sync);
const char* glove_output_name(GloveOutput output);

// Plain options; the [glove] config section has the same keys (launch/kinds/glove.h).
struct GloveOptions {
  int64_t dim = 100;           // D
  double x_max = 100.0;        // weighting cutoff
  double alpha = 0.75;         // weighting exponent
  double eta = 0.05;           // AdaGrad initial step
  double grad_clip = 100.0;    // clip of eta * gradient per component
  int64_t epochs = 15;         // passes over the non-zeros ("iterations")
  int threads = 1;             // Hogwild threads per rank; 1 = deterministic
  GloveSync sync = GloveSync::kStratified;
  int64_t step_nnz = int64_t{1} << 24;   // non-zeros per step of the largest block = sync period
  bool reshuffle = true;       // visit the chunks of a block in a fresh order every epoch
  uint64_t seed = 1234;
  GloveOutput output = GloveOutput::kSum;
};

class Glove final : public Model {
 public:
  // Use make_glove(). `records` is this rank's partition, already converted.
  Glove(const GloveOptions& options, Communicator& comm, const Vocab& vocab,
        std::vector<GloveRecord> records);

  std::string_view kind() const override { return "glove"; }
  ParamStore& params() override { return params_; }
  int64_t total_steps() const override { return total_steps_; }
  int64_t steps_per_epoch() const override { return steps_per_epoch_; }
  std::string_view item_unit() const override { return "nnz"; }
  StepStats train_step(const StepContext& ctx) override;
  std::vector<OptimizerSlot> optimizer_slots() override;
  std::vector<RankState> rank_state() const override;
  std::optional<VocabView> vocab() const override;
  int64_t tokens_seen() const override { return nnz_seen_; }
  void restore(const CheckpointReader& reader, int64_t step) override;
  std::vector<std::string> shape_keys() const override { return {"glove.dim"}; }
  // Every step ends with the replicas equal (Note [GloVe synchronisation] in glove_sync.cpp).
  bool checkpoint_ready(int64_t /*steps_done*/) const override { return true; }

  // The vectors to export, (V, output_dim()) row-major, from the current parameters.
  std::vector<float> output_vectors() const;
  int64_t output_dim() const;
  const GloveOptions& options() const { return options_; }
  const Vocab& vocabulary() const { return vocab_; }
  int64_t epoch() const override { return epoch_; }
  int64_t epoch_step() const override { return slice_; }
  // The accumulators, (total_elements) in the ParamStore's packed layout.
  Tensor gradsq() const { return gradsq_.as(DType::kF32); }

 private:
  void init_params();
  void setup_steps();
  GloveView view() const;
  double train_slice(int block, int64_t begin, int64_t end);
  void synchronize();
  static constexpr int64_t kChunk = 4096;
  int64_t slice_begin(int64_t n, int64_t part) const;
  void order_chunks();                         // chunk_order_ for epoch_
  int blocks() const;                          // W with kStratified and W > 1, else 1
  int64_t block_size(int rank, int block) const;
  void sync_nnz_seen(int64_t slice);
  void make_blocks();

  GloveOptions options_;
  Communicator& comm_;
  Vocab vocab_;
  std::vector<GloveRecord> records_;     // (n_r,) this rank's non-zeros
  std::vector<int64_t> block_begin_;     // (blocks + 1,) this rank's blocks in records_
  std::vector<int64_t> block_nnz_;       // (world, blocks) every rank's block sizes
  std::vector<std::vector<int64_t>> chunk_order_;   // (blocks, chunks) for ordered_epoch_
  int64_t ordered_epoch_ = -1;
  ParamStore params_;
  Buffer gradsq_;          // (total_elements) f32, starts at 1
  Buffer values_base_;     // (total_elements) parameters at the last sync (kDelta, world > 1)
  Buffer gradsq_base_;     // (total_elements) accumulators at the last sync
  int64_t steps_per_phase_ = 1;
  int64_t steps_per_epoch_ = 1;
  int64_t total_steps_ = 1;
  int64_t epoch_ = 0;      // cursor: epoch of the next step
  int64_t slice_ = 0;      // cursor: slice of the next step within the epoch
  int64_t nnz_seen_ = 0;   // non-zeros trained, all ranks
};

// The exported vectors (V, output_dim) row-major from W and W_ctx (both (V, D)): W + W_ctx,
// W alone, or [W, W_ctx] (output_dim = 2 D). Glove::output_vectors and `loom export` (from a
// checkpoint) share it.
std::vector<float> glove_output_vectors(const float* W, const float* W_ctx, int64_t V, int64_t D,
                                        GloveOutput output);

// The order in which epoch `epoch` visits the ceil(n / chunk) chunks of a block of n
// records on rank `rank`: a Fisher-Yates permutation of the full chunks, keyed by (seed,
// rank, kShuffle) at position epoch << 32; a final partial chunk stays last.
std::vector<int64_t> glove_chunk_order(int64_t n, int64_t chunk, uint64_t seed, int rank, int64_t epoch);

// Converts this rank's partition into training records (log x, f(x)), frees the entries,
// declares and initialises the parameters. Collective (exchanges partition sizes).
std::unique_ptr<Glove> make_glove(const GloveOptions& options, Communicator& comm,
                                  const Vocab& vocab, std::vector<CooccurEntry> partition);

}  // namespace loom
