#include "models/bert/bert.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <string>

#include "core/log.h"
#include "core/measure.h"
#include "core/schedule.h"
#include "dist/communicator.h"
#include "io/token_windows.h"

namespace loom {
namespace {

// The largest slice of a global batch of `batch` examples a rank of `world` can get.
int64_t max_slice(int64_t batch, int world) { return std::max<int64_t>(1, (batch + world - 1) / world); }

int64_t arena_batch(const BertOptions& o, int world) {
  const int64_t slice = max_slice(o.batch_size, world);
  return o.micro_batch > 0 ? std::min(o.micro_batch, slice) : slice;
}

}  // namespace

double bert_lr(const BertOptions& o, int64_t step) {
  if (o.schedule == BertSchedule::kCosine)
    return lr_warmup_cosine(step, o.warmup_steps, o.steps, o.lr, o.lr_min);
  // BERT's: linear warm-up, then linear decay to lr_min at the last step.
  if (o.warmup_steps > 0 && step < o.warmup_steps) return o.lr * double(step + 1) / double(o.warmup_steps);
  if (o.steps <= o.warmup_steps) return o.lr;
  const double frac = std::clamp(double(step - o.warmup_steps) / double(o.steps - o.warmup_steps), 0.0, 1.0);
  return o.lr_min + (o.lr - o.lr_min) * (1.0 - frac);
}

Bert::Bert(const BertOptions& options, Communicator& comm, const BertExampleSource* train,
           const BertExampleSource* heldout)
    : options_(options),
      comm_(comm),
      train_(train),
      heldout_(heldout),
      net_(options.shape, arena_batch(options, comm.size()), options.seq_len, options.max_predictions,
           options.device) {
  LOOM_ASSERT(train_ != nullptr, "Bert without training examples");
  for (const BertExampleSource* s : {train_, heldout_}) {
    if (s == nullptr) continue;
    LOOM_ASSERT(s->seq_len() == options.seq_len, "example length differs from bert.seq_len");
    LOOM_ASSERT(s->max_predictions() == options.max_predictions,
                "examples' max_predictions differ from bert.max_predictions");
  }
  net_.init(options.seed);
  AdamWOptions adam;
  adam.beta1 = options.beta1;
  adam.beta2 = options.beta2;
  adam.eps = options.eps;
  adam.weight_decay = options.weight_decay;
  adam.decay = net_.decay_mask(options.decay_embeddings);
  if (options.optimizer == BertOptimizerKind::kLamb)
    optimizer_ = std::make_unique<Lamb>(net_.params(), adam);
  else
    optimizer_ = std::make_unique<AdamW>(net_.params(), adam);
  // The slice buffers hold a rank's largest slice of a training batch or of an evaluation.
  slice_capacity_ = std::max(max_slice(options.batch_size, comm.size()), net_.micro_batch());
  const auto T = size_t(options.seq_len), P = size_t(options.max_predictions), S = size_t(slice_capacity_);
  tokens_.resize(S * T);
  segments_.resize(S * T);
  mask_.resize(S * T);
  positions_.resize(S * P);
  labels_.resize(S * P);
  nsp_.resize(S);
  if (!options.device.is_cpu())
    ids_device_ = Buffer(size_t(net_.micro_batch()) * (3 * T + 2 * P + 1) * sizeof(int32_t), options.device);
}

Bert::~Bert() = default;

int64_t Bert::steps_per_epoch() const {
  const int64_t n = train_->examples_per_epoch();
  return std::max<int64_t>(1, (n + options_.batch_size - 1) / options_.batch_size);
}

int64_t Bert::epoch() const { return steps_done_ * options_.batch_size / train_->examples_per_epoch(); }

int64_t Bert::epoch_step() const {
  const int64_t B = options_.batch_size, n = train_->examples_per_epoch();
  const int64_t first_step = (epoch() * n + B - 1) / B;
  return steps_done_ - first_step;
}

std::vector<std::string> Bert::shape_keys() const {
  return {"bert.hidden", "bert.n_layer", "bert.n_head", "bert.intermediate", "bert.max_position"};
}

GradSync& Bert::sync_for(const StepContext& ctx) {
  Communicator* comm = ctx.device_comm != nullptr ? ctx.device_comm : &comm_;
  if (sync_ == nullptr || comm != sync_comm_) {
    sync_ = std::make_unique<GradSync>(net_.params(), *comm, options_.buckets);
    sync_comm_ = comm;
  }
  return *sync_;
}

void Bert::load_examples(const BertExampleSource& source, int64_t first, int64_t count) {
  LOOM_ASSERT(count <= slice_capacity_, "BERT slice larger than its buffers");
  const int64_t T = options_.seq_len, P = options_.max_predictions;
  for (int64_t i = 0; i < count; ++i) {
    BertExampleSlot slot{tokens_.data() + i * T, segments_.data() + i * T, mask_.data() + i * T,
                         positions_.data() + i * P, labels_.data() + i * P, nsp_.data() + i};
    source.example(first + i, slot);
  }
}

BertLosses Bert::run_forward(int64_t offset, int64_t n) {
  const int64_t T = options_.seq_len, P = options_.max_predictions;
  Tensor tokens(tokens_.data() + offset * T, {n, T}, DType::kI32);
  Tensor segments(segments_.data() + offset * T, {n, T}, DType::kI32);
  Tensor mask(mask_.data() + offset * T, {n, T}, DType::kI32);
  Tensor positions(positions_.data() + offset * P, {n, P}, DType::kI32);
  Tensor labels(labels_.data() + offset * P, {n, P}, DType::kI32);
  Tensor nsp(nsp_.data() + offset, {n}, DType::kI32);
  if (!options_.device.is_cpu()) {
    // Into the device buffer on the legacy default stream, which the kernels' stream
    // follows (Note [CUDA streams] in core/device.h); the previous micro-batch's backward,
    // queued before, has read the old ids by then.
    auto* next = static_cast<int32_t*>(ids_device_.data());
    for (Tensor* t : {&tokens, &segments, &mask, &positions, &labels, &nsp}) {
      copy_bytes(next, options_.device, t->data(), Device::cpu(), t->nbytes());
      *t = Tensor(next, t->shape(), DType::kI32, options_.device);
      next += t->numel();
    }
  }
  return net_.forward(BertInputs{tokens, segments, mask, positions, labels, nsp});
}

StepStats Bert::train_step(const StepContext& ctx) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t B = options_.batch_size, T = options_.seq_len, P = options_.max_predictions;
  const int64_t mb = net_.micro_batch();
  const int W = comm_.size(), r = comm_.rank();
  GradSync& sync = sync_for(ctx);
  ParamStore& params = net_.params();
  net_.set_count_correct(false);   // the step needs the loss sums only (counts come from labels_)
  if (blocking_allreduce_s_ < 0.0) {
    params.zero_grads();
    Communicator& dc = ctx.device_comm != nullptr ? *ctx.device_comm : comm_;
    double best = 1e30;
    for (int i = 0; i < 3; ++i) {
      const auto a = std::chrono::steady_clock::now();
      dc.allreduce(params.grads(), {});
      best = std::min(best, seconds_since(a));
    }
    blocking_allreduce_s_ = best;
    sync.reset_stats();
  }

  params.zero_grads();
  const WindowSlice mine = rank_slice(ctx.step, B, r, W);   // Note [Rank slices]
  const int64_t count = mine.count;
  load_examples(*train_, mine.begin, count);
  // The global batch's masked positions and labelled pairs (Note [BERT data parallelism]).
  double counts[2] = {0.0, 0.0};
  for (int64_t i = 0; i < count * P; ++i) counts[0] += labels_[size_t(i)] >= 0 ? 1.0 : 0.0;
  for (int64_t i = 0; i < count; ++i) counts[1] += nsp_[size_t(i)] >= 0 ? 1.0 : 0.0;
  ctx.comm->allreduce(Tensor(counts, {2}, DType::kF64), {});
  const double mlm_scale = counts[0] > 0 ? 1.0 / counts[0] : 0.0;
  const double nsp_scale = counts[1] > 0 ? 1.0 / counts[1] : 0.0;

  BertLosses total;
  for (int64_t done = 0; done < count;) {
    const int64_t n = std::min(mb, count - done);
    const BertLosses l = run_forward(done, n);
    total.mlm_loss += l.mlm_loss;
    total.nsp_loss += l.nsp_loss;
    done += n;
    if (done < count) {
      net_.backward(mlm_scale, nsp_scale);
    } else {
      net_.backward(mlm_scale, nsp_scale, [&sync](int p) { sync.mark_ready(p); });
    }
    if (first_step_done_) rank_flops_ += 3.0 * net_.matmul_flops(n, T, P);
  }
  if (count == 0) sync.mark_all_ready();   // more ranks than examples: send zeros
  sync.finish(1.0);
  clip_grad_norm(params, options_.grad_clip);
  const double lr = bert_lr(options_, ctx.step);
  optimizer_->step(params, lr);
  steps_done_ = ctx.step + 1;

  // The Trainer shows Σ loss_sum / Σ examples over ranks: this rank's share of the global
  // loss (MLM mean + NSP mean) times B, over its examples, gives exactly that loss.
  StepStats stats;
  stats.loss_sum = (total.mlm_loss * mlm_scale + total.nsp_loss * nsp_scale) * double(B);
  stats.examples = count;
  stats.items = count * T;
  stats.lr = lr;
  if (first_step_done_) {
    train_seconds_ += seconds_since(t0);
    steady_tokens_ += B * T;
  }
  first_step_done_ = true;

  const bool last = steps_done_ == options_.steps;
  if (heldout_ != nullptr &&
      (last || (options_.eval_every > 0 && steps_done_ % options_.eval_every == 0))) {
    const BertEval e = evaluate_heldout(*ctx.comm);
    log::info("bert", "step " + std::to_string(e.step) + ": held-out MLM loss " + fixed(e.mlm_loss, 4) +
                          ", accuracy " + fixed(100 * e.mlm_accuracy, 2) + " %; NSP loss " +
                          fixed(e.nsp_loss, 4) + ", accuracy " + fixed(100 * e.nsp_accuracy, 2) + " % (" +
                          std::to_string(e.examples) + " examples), lr " + fixed(lr * 1e4, 3) + "e-4");
    evals_.push_back(e);
  }
  return stats;
}

BertEval Bert::evaluate_heldout(Communicator& comm, int64_t examples) {
  LOOM_CHECK(heldout_ != nullptr, Error, "bert: no held-out split to evaluate");
  net_.set_count_correct(true);
  const int64_t mb = net_.micro_batch();
  int64_t total = examples > 0 ? examples : options_.eval_batches * options_.batch_size;
  total = std::min(total, heldout_->examples_per_epoch());
  const WindowSlice mine = rank_slice(0, total, comm.rank(), comm.size());
  // mlm loss, mlm count, mlm correct, nsp loss, nsp count, nsp correct
  double sums[6] = {0, 0, 0, 0, 0, 0};
  for (int64_t done = 0; done < mine.count;) {
    const int64_t n = std::min({mb, mine.count - done, slice_capacity_});
    load_examples(*heldout_, mine.begin + done, n);
    const BertLosses l = run_forward(0, n);
    sums[0] += l.mlm_loss;
    sums[1] += double(l.mlm_count);
    sums[2] += double(l.mlm_correct);
    sums[3] += l.nsp_loss;
    sums[4] += double(l.nsp_count);
    sums[5] += double(l.nsp_correct);
    done += n;
  }
  comm.allreduce(Tensor(sums, {6}, DType::kF64), {});
  BertEval e;
  e.step = steps_done_;
  e.examples = total;
  if (sums[1] > 0) e.mlm_loss = sums[0] / sums[1], e.mlm_accuracy = sums[2] / sums[1];
  if (sums[4] > 0) e.nsp_loss = sums[3] / sums[4], e.nsp_accuracy = sums[5] / sums[4];
  return e;
}

BertSyncReport Bert::sync_report() const {
  return sync_ == nullptr ? BertSyncReport{} : grad_sync_report(sync_->stats(), blocking_allreduce_s_);
}

std::vector<OptimizerSlot> Bert::optimizer_slots() {
  return optimizer_slots_of(*optimizer_, net_.params());
}

// The held-out curve rides in the checkpoint as GPT's does: (step, 4 doubles' bits, examples).
std::vector<RankState> Bert::rank_state() const {
  std::vector<uint64_t> evals = {uint64_t(evals_.size())};
  for (const BertEval& e : evals_) {
    evals.push_back(uint64_t(e.step));
    for (double v : {e.mlm_loss, e.mlm_accuracy, e.nsp_loss, e.nsp_accuracy}) {
      uint64_t bits = 0;
      std::memcpy(&bits, &v, sizeof bits);
      evals.push_back(bits);
    }
    evals.push_back(uint64_t(e.examples));
  }
  return {{"data", {uint64_t(steps_done_ * options_.batch_size), uint64_t(optimizer_->steps_taken())}},
          {"heldout", std::move(evals)}};
}

void Bert::restore(const CheckpointReader& reader, int64_t step) {
  read_optimizer_slots(reader, *optimizer_, net_.params());
  const std::vector<uint64_t> data = reader.read_state("data");
  LOOM_CHECK(data.size() >= 2, DataError, reader.path() + ": /state/data has too few words");
  const auto examples = int64_t(data[0]);
  LOOM_CHECK(examples == step * options_.batch_size, DataError,
             reader.path() + ": the data cursor (" + std::to_string(examples) +
                 " examples) is not step x bert.batch_size (" + std::to_string(step) + " x " +
                 std::to_string(options_.batch_size) + "); bert.batch_size changed since the checkpoint");
  optimizer_->set_steps_taken(int64_t(data[1]));
  steps_done_ = step;
  evals_.clear();
  int64_t per_rank = 0;
  const std::vector<uint64_t> evals = reader.read_state("heldout", &per_rank);
  constexpr uint64_t kWords = 6;
  for (uint64_t i = 0; per_rank > 0 && i < evals[0] && kWords * i + kWords < uint64_t(per_rank); ++i) {
    const uint64_t* w = &evals[kWords * i + 1];
    BertEval e;
    e.step = int64_t(w[0]);
    double* fields[] = {&e.mlm_loss, &e.mlm_accuracy, &e.nsp_loss, &e.nsp_accuracy};
    for (int k = 0; k < 4; ++k) std::memcpy(fields[k], &w[1 + k], sizeof(double));
    e.examples = int64_t(w[5]);
    evals_.push_back(e);
  }
  if (reader.meta().world_size != comm_.size())
    log::info("bert", "resuming at world size " + std::to_string(comm_.size()) + " from " +
                          std::to_string(reader.meta().world_size) + ": the same global example " +
                          std::to_string(examples) + ", each rank a new slice of every batch");
}

}  // namespace loom
