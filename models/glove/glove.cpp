// Glove: setup, the step, checkpoint hooks and output vectors (glove.h). The cross-rank
// synchronisation lives in glove_sync.cpp.
#include "models/glove/glove.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/rng.h"
#include "dist/communicator.h"

namespace loom {

namespace {

// Every key's own range is the [glove] schema's (launch/kinds/glove.h), checked once by the
// config loader, and no rule between [glove] keys can fail; so the one check, in the
// constructor, is of this code's invariants, for options built directly (tests).
void check_options(const GloveOptions& o) {
  LOOM_ASSERT(o.dim >= 1 && o.x_max > 0 && o.alpha > 0 && o.eta > 0 && o.grad_clip > 0 && o.epochs >= 1 &&
                  o.threads >= 1 && o.step_nnz >= 1,
              "GloveOptions outside the ranges of the [glove] schema");
}

}  // namespace

GloveSync parse_glove_sync(std::string_view name) {
  if (name == "stratified") return GloveSync::kStratified;
  if (name == "delta") return GloveSync::kDelta;
  if (name == "average") return GloveSync::kAverage;
  throw ConfigError("glove.sync: unknown scheme '" + std::string(name) +
                    "' (stratified|delta|average)");
}

GloveOutput parse_glove_output(std::string_view name) {
  if (name == "sum") return GloveOutput::kSum;
  if (name == "w") return GloveOutput::kW;
  if (name == "concat") return GloveOutput::kConcat;
  throw ConfigError("glove.output: unknown value '" + std::string(name) + "' (sum|w|concat)");
}

const char* glove_sync_name(GloveSync sync) {
  switch (sync) {
    case GloveSync::kStratified: return "stratified";
    case GloveSync::kDelta: return "delta";
    case GloveSync::kAverage: return "average";
  }
  return "?";
}

const char* glove_output_name(GloveOutput output) {
  switch (output) {
    case GloveOutput::kSum: return "sum";
    case GloveOutput::kW: return "w";
    case GloveOutput::kConcat: return "concat";
  }
  return "?";
}

Glove::Glove(const GloveOptions& options, Communicator& comm, const Vocab& vocab,
             std::vector<GloveRecord> records)
    : options_(options), comm_(comm), vocab_(vocab), records_(std::move(records)) {
  check_options(options_);
  const int64_t V = vocab_.size(), D = options_.dim;
  LOOM_CHECK(V > 0, DataError, "glove: the vocabulary is empty (check vocab.min_count and the corpus)");
  for (const GloveRecord& r : records_)
    LOOM_ASSERT(r.row >= 0 && r.row < V && r.col >= 0 && r.col < V, "glove record id out of range");
  params_.declare("W", {V, D});
  params_.declare("W_ctx", {V, D});
  params_.declare("b", {V});
  params_.declare("b_ctx", {V});
  params_.finalize();
  const size_t bytes = static_cast<size_t>(params_.total_elements()) * sizeof(float);
  gradsq_ = Buffer(bytes);
  std::fill_n(gradsq().f32(), params_.total_elements(), 1.0f);
  init_params();
  make_blocks();
  setup_steps();
  if (comm_.size() > 1 && options_.sync != GloveSync::kAverage) {
    values_base_ = Buffer(bytes);
    gradsq_base_ = Buffer(bytes);
    std::memcpy(values_base_.data(), params_.values().data(), bytes);
    std::memcpy(gradsq_base_.data(), gradsq_.data(), bytes);
  }
}

// GloVe's reference initialisation: every parameter (biases too) uniform in
// [-0.5, 0.5) / D, drawn from one stream keyed by (seed, 0, kInit): equal on every rank.
void Glove::init_params() {
  Rng rng(options_.seed, 0, RngPurpose::kInit);
  const float scale = 1.0f / static_cast<float>(options_.dim);
  for (int e = 0; e < params_.size(); ++e) {
    Tensor t = params_.value(e);
    float* v = t.f32();
    for (int64_t i = 0; i < t.numel(); ++i) v[i] = (rng.uniform_f32() - 0.5f) * scale;
  }
}

int Glove::blocks() const {
  return options_.sync == GloveSync::kStratified ? comm_.size() : 1;
}

int64_t Glove::block_size(int rank, int block) const {
  return block_nnz_[static_cast<size_t>(rank) * static_cast<size_t>(blocks()) + static_cast<size_t>(block)];
}

// Groups the records by column group (j % blocks()), keeping their order within a group:
// a stable counting sort.
void Glove::make_blocks() {
  const int B = blocks();
  block_begin_.assign(static_cast<size_t>(B) + 1, 0);
  if (B == 1) {
    block_begin_[1] = static_cast<int64_t>(records_.size());
    return;
  }
  for (const GloveRecord& r : records_) ++block_begin_[static_cast<size_t>(r.col % B) + 1];
  for (int b = 0; b < B; ++b) block_begin_[static_cast<size_t>(b) + 1] += block_begin_[static_cast<size_t>(b)];
  std::vector<int64_t> next(block_begin_.begin(), block_begin_.end() - 1);   // (B,)
  std::vector<GloveRecord> grouped(records_.size());
  for (const GloveRecord& r : records_) grouped[static_cast<size_t>(next[static_cast<size_t>(r.col % B)]++)] = r;
  records_.swap(grouped);
}

// Every rank learns every block size, so that S is equal everywhere and each rank can
// count the non-zeros trained by all ranks without another collective per step.
void Glove::setup_steps() {
  const int world = comm_.size(), B = blocks();
  std::vector<int64_t> mine(static_cast<size_t>(B));   // (B,)
  for (int b = 0; b < B; ++b)
    mine[static_cast<size_t>(b)] = block_begin_[static_cast<size_t>(b) + 1] - block_begin_[static_cast<size_t>(b)];
  block_nnz_.assign(static_cast<size_t>(world) * static_cast<size_t>(B), 0);
  comm_.allgather(Tensor::of(mine.data(), B), Tensor::of(block_nnz_.data(), static_cast<int64_t>(block_nnz_.size())));
  const int64_t largest = std::max<int64_t>(1, *std::max_element(block_nnz_.begin(), block_nnz_.end()));
  steps_per_phase_ = (largest + options_.step_nnz - 1) / options_.step_nnz;
  steps_per_epoch_ = steps_per_phase_ * B;
  total_steps_ = options_.epochs * steps_per_epoch_;
}

GloveView Glove::view() const {
  float* g = static_cast<float*>(gradsq_.data());
  auto off = [&](int e) { return params_.entry(e).offset; };
  return GloveView{params_.value(0).f32(), params_.value(1).f32(), params_.value(2).f32(),
                   params_.value(3).f32(), g + off(0), g + off(1), g + off(2), g + off(3),
                   options_.dim};
}

// Where part `part` (of steps_per_phase_) of a block of n records begins, in record
// positions of the epoch's visiting order.
int64_t Glove::slice_begin(int64_t n, int64_t part) const {
  if (!options_.reshuffle) return n * part / steps_per_phase_;
  const int64_t chunks = (n + kChunk - 1) / kChunk;
  return std::min(n, chunks * part / steps_per_phase_ * kChunk);
}

std::vector<int64_t> glove_chunk_order(int64_t n, int64_t chunk, uint64_t seed, int rank, int64_t epoch) {
  Rng rng(seed, static_cast<uint64_t>(rank), RngPurpose::kShuffle);
  rng.seek(static_cast<uint64_t>(epoch) << 32);
  std::vector<int64_t> order(static_cast<size_t>((n + chunk - 1) / chunk));   // (chunks,)
  for (size_t q = 0; q < order.size(); ++q) order[q] = static_cast<int64_t>(q);
  const size_t full = static_cast<size_t>(n / chunk);   // chunks [0, full) are full
  for (size_t q = full; q > 1; --q) std::swap(order[q - 1], order[rng.below(q)]);
  return order;
}

void Glove::order_chunks() {
  if (ordered_epoch_ == epoch_) return;
  chunk_order_.assign(static_cast<size_t>(blocks()), {});
  for (int b = 0; b < blocks(); ++b) {
    const int64_t n = block_begin_[static_cast<size_t>(b) + 1] - block_begin_[static_cast<size_t>(b)];
    chunk_order_[static_cast<size_t>(b)] = glove_chunk_order(n, kChunk, options_.seed, comm_.rank(), epoch_);
  }
  ordered_epoch_ = epoch_;
}

// Hogwild: thread t trains the t-th contiguous part of the slice. With one thread the
// records are visited in order, so the result is deterministic. [begin, end) are positions
// in the block's visiting order (chunk_order_ with reshuffle, else record offsets).
double Glove::train_slice(int block, int64_t begin, int64_t end) {
  const GloveView p = view();
  const GloveHyper h{static_cast<float>(options_.eta), static_cast<float>(options_.grad_clip)};
  const int64_t first = block_begin_[static_cast<size_t>(block)];
  const int64_t n = block_begin_[static_cast<size_t>(block) + 1] - first;
  const GloveRecord* records = records_.data() + first;
  const std::vector<int64_t>* order = options_.reshuffle ? &chunk_order_[static_cast<size_t>(block)] : nullptr;
  auto run = [&](int64_t from, int64_t to) {   // positions [from, to)
    if (order == nullptr) return glove_update_range(p, records, from, to, h);
    double loss = 0.0;
    for (int64_t pos = from; pos < to;) {
      const int64_t q = pos / kChunk, until = std::min(to, (q + 1) * kChunk);
      const int64_t base = (*order)[static_cast<size_t>(q)] * kChunk - q * kChunk;
      loss += glove_update_range(p, records, base + pos, std::min(base + until, n), h);
      pos = until;
    }
    return loss;
  };
  const int threads = options_.threads;
  if (threads == 1) return run(begin, end);
  double loss = 0.0;
#pragma omp parallel num_threads(threads) reduction(+ : loss)
  {
    const int64_t t = omp_get_thread_num(), T = omp_get_num_threads(), m = end - begin;
    loss += run(begin + m * t / T, begin + m * (t + 1) / T);
  }
  return loss;
}

StepStats Glove::train_step(const StepContext& /*ctx*/) {
  LOOM_ASSERT(epoch_ < options_.epochs, "glove: train_step past the last epoch");
  const int64_t phase = slice_ / steps_per_phase_, part = slice_ % steps_per_phase_;
  const int block = static_cast<int>((comm_.rank() + phase) % blocks());
  const int64_t n = block_begin_[static_cast<size_t>(block) + 1] - block_begin_[static_cast<size_t>(block)];
  const int64_t begin = slice_begin(n, part), end = slice_begin(n, part + 1);
  if (options_.reshuffle) order_chunks();
  StepStats stats;
  stats.loss_sum = train_slice(block, begin, end);
  stats.examples = end - begin;
  stats.items = end - begin;
  stats.lr = options_.eta;   // AdaGrad's base rate: constant (each weight's step is eta / sqrt(gradsq))
  if (comm_.size() > 1) synchronize();
  sync_nnz_seen(slice_);
  if (++slice_ == steps_per_epoch_) {
    slice_ = 0;
    ++epoch_;
  }
  return stats;
}

void Glove::sync_nnz_seen(int64_t slice) {
  const int64_t phase = slice / steps_per_phase_, part = slice % steps_per_phase_;
  for (int r = 0; r < comm_.size(); ++r) {
    const int64_t n = block_size(r, static_cast<int>((r + phase) % blocks()));
    nnz_seen_ += slice_begin(n, part + 1) - slice_begin(n, part);
  }
}

std::vector<OptimizerSlot> Glove::optimizer_slots() {
  std::vector<OptimizerSlot> slots;
  float* g = static_cast<float*>(gradsq_.data());
  for (const ParamStore::Entry& e : params_.entries())
    slots.push_back({e.name, "gradsq", Tensor(g + e.offset, e.shape, DType::kF32)});
  return slots;
}

// "data": {epoch, slice, steps_per_epoch, partition size} of this rank's cursor. The RNG
// is used only for initialisation, so there is no RNG state to keep.
std::vector<RankState> Glove::rank_state() const {
  return {RankState{"data", {static_cast<uint64_t>(epoch_), static_cast<uint64_t>(slice_),
                             static_cast<uint64_t>(steps_per_epoch_),
                             static_cast<uint64_t>(records_.size())}}};
}

std::optional<VocabView> Glove::vocab() const {
  return VocabView{&vocab_.tokens(), &vocab_.counts()};
}

std::vector<float> Glove::output_vectors() const {
  return glove_output_vectors(params_.value(0).f32(), params_.value(1).f32(), vocab_.size(), options_.dim,
                              options_.output);
}

std::vector<float> glove_output_vectors(const float* W, const float* C, int64_t V, int64_t D, GloveOutput output) {
  const int64_t O = output == GloveOutput::kConcat ? 2 * D : D;
  std::vector<float> out(static_cast<size_t>(V * O));   // (V, O)
  for (int64_t i = 0; i < V; ++i) {
    float* o = out.data() + i * O;
    const float* w = W + i * D;   // (D,)
    const float* c = C + i * D;   // (D,)
    for (int64_t k = 0; k < D; ++k) {
      switch (output) {
        case GloveOutput::kSum: o[k] = w[k] + c[k]; break;
        case GloveOutput::kW: o[k] = w[k]; break;
        case GloveOutput::kConcat: o[k] = w[k]; o[D + k] = c[k]; break;
      }
    }
  }
  return out;
}

int64_t Glove::output_dim() const {
  return options_.output == GloveOutput::kConcat ? 2 * options_.dim : options_.dim;
}

std::unique_ptr<Glove> make_glove(const GloveOptions& options, Communicator& comm,
                                  const Vocab& vocab, std::vector<CooccurEntry> partition) {
  std::vector<GloveRecord> records(partition.size());   // (n_r,)
  for (size_t i = 0; i < partition.size(); ++i) {
    const CooccurEntry& e = partition[i];
    const bool ids_ok = e.row >= 0 && e.row < vocab.size() && e.col >= 0 && e.col < vocab.size();
    LOOM_CHECK(ids_ok && e.value > 0 && std::isfinite(e.value), DataError,
               "glove: co-occurrence entry " + std::to_string(i) + " of rank " +
                   std::to_string(comm.rank()) + " is (" + std::to_string(e.row) + ", " +
                   std::to_string(e.col) + ", " + std::to_string(e.value) +
                   "): ids must be < the vocabulary size " + std::to_string(vocab.size()) +
                   " and the value finite and > 0 (was the matrix built with this vocabulary?)");
    records[i] = GloveRecord{e.row, e.col, static_cast<float>(std::log(e.value)),
                             static_cast<float>(glove_weight(e.value, options.x_max, options.alpha))};
  }
  std::vector<CooccurEntry>().swap(partition);   // free the input before allocating params
  return std::make_unique<Glove>(options, comm, vocab, std::move(records));
}

}  // namespace loom
