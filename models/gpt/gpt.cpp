#include "models/gpt/gpt.h"

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

// The arena's micro-batch: the option, or a rank's largest slice of the global batch.
int64_t arena_batch(const GptOptions& o, int world) {
  const int64_t slice = (o.batch_size + world - 1) / world;
  return o.micro_batch > 0 ? std::min(o.micro_batch, std::max<int64_t>(slice, 1))
                           : std::max<int64_t>(slice, 1);
}

}  // namespace

Gpt::Gpt(const GptOptions& options, Communicator& comm, const WindowSource* train,
         const WindowSource* heldout)
    : options_(options),
      comm_(comm),
      train_(train),
      heldout_(heldout),
      net_(options.shape, arena_batch(options, comm.size()), options.seq_len, options.device) {
  LOOM_ASSERT(train_ != nullptr, "Gpt without training windows");
  LOOM_ASSERT(train_->seq_len() == options.seq_len, "window length differs from gpt.seq_len");
  LOOM_ASSERT(heldout_ == nullptr || heldout_->seq_len() == options.seq_len,
              "held-out window length differs from gpt.seq_len");
  net_.init(options.seed);
  AdamWOptions adam;
  adam.beta1 = options.beta1;
  adam.beta2 = options.beta2;
  adam.eps = options.eps;
  adam.weight_decay = options.weight_decay;
  adam.decay = net_.decay_mask(options.decay_embeddings);
  optimizer_ = std::make_unique<AdamW>(net_.params(), adam);
  const int64_t mb = net_.micro_batch(), T = options.seq_len;
  window_buf_.resize(size_t(mb * (T + 1)));
  tokens_.resize(size_t(mb * T));
  targets_.resize(size_t(mb * T));
  if (!options.device.is_cpu()) ids_device_ = Buffer(size_t(2 * mb * T) * sizeof(int32_t), options.device);
}

Gpt::~Gpt() = default;

int64_t Gpt::steps_per_epoch() const {
  const int64_t w = train_->windows_per_epoch();
  return std::max<int64_t>(1, (w + options_.batch_size - 1) / options_.batch_size);
}

int64_t Gpt::epoch() const {
  return steps_done_ * options_.batch_size / train_->windows_per_epoch();
}

int64_t Gpt::epoch_step() const {
  // Steps since the first step that began in the current epoch.
  const int64_t B = options_.batch_size, w = train_->windows_per_epoch();
  const int64_t epoch_start = epoch() * w;   // first window of this epoch
  const int64_t first_step = (epoch_start + B - 1) / B;
  return steps_done_ - first_step;
}

std::vector<std::string> Gpt::shape_keys() const {
  return {"gpt.n_layer", "gpt.n_head", "gpt.d_model", "gpt.n_positions", "gpt.bias"};
}

GradSync& Gpt::sync_for(const StepContext& ctx) {
  Communicator* comm = ctx.device_comm != nullptr ? ctx.device_comm : &comm_;
  if (sync_ == nullptr || comm != sync_comm_) {
    sync_ = std::make_unique<GradSync>(net_.params(), *comm, options_.buckets);
    sync_comm_ = comm;
  }
  return *sync_;
}

void Gpt::load_windows(const WindowSource& source, int64_t first, int64_t count) {
  const int64_t T = options_.seq_len;
  for (int64_t i = 0; i < count; ++i) {
    int32_t* w = window_buf_.data() + i * (T + 1);
    source.window(first + i, w);
    std::copy(w, w + T, tokens_.data() + i * T);
    std::copy(w + 1, w + T + 1, targets_.data() + i * T);
  }
}

std::pair<Tensor, Tensor> Gpt::batch_on_device(int64_t n) {
  const int64_t T = options_.seq_len;
  Tensor tokens(tokens_.data(), {n, T}, DType::kI32);
  Tensor targets(targets_.data(), {n, T}, DType::kI32);
  if (options_.device.is_cpu()) return {tokens, targets};
  // Into the device buffer on the legacy default stream, which the kernels' stream follows
  // (Note [CUDA streams] in core/device.h); the previous micro-batch's backward, queued
  // before, has read the old ids by then.
  auto* dev = static_cast<int32_t*>(ids_device_.data());
  const int64_t stride = net_.micro_batch() * T;
  copy_bytes(dev, options_.device, tokens_.data(), Device::cpu(), size_t(n * T) * sizeof(int32_t));
  copy_bytes(dev + stride, options_.device, targets_.data(), Device::cpu(), size_t(n * T) * sizeof(int32_t));
  return {Tensor(dev, {n, T}, DType::kI32, options_.device),
          Tensor(dev + stride, {n, T}, DType::kI32, options_.device)};
}

StepStats Gpt::train_step(const StepContext& ctx) {
  const auto t0 = std::chrono::steady_clock::now();
  const int64_t B = options_.batch_size, T = options_.seq_len, mb = net_.micro_batch();
  const int W = comm_.size(), r = comm_.rank();
  GradSync& sync = sync_for(ctx);
  ParamStore& params = net_.params();
  if (blocking_allreduce_s_ < 0.0) {
    // What the buckets would cost unhidden: one blocking allreduce of the whole gradient
    // buffer (zeros now), the best of three (Note [What GradSync measures]).
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
  const int64_t first = mine.begin, count = mine.count;
  const double scale = 1.0 / double(B * T);   // the mean over the global batch's tokens
  StepStats stats;
  for (int64_t done = 0; done < count;) {
    const int64_t n = std::min(mb, count - done);
    load_windows(*train_, first + done, n);
    const auto [tokens, targets] = batch_on_device(n);
    stats.loss_sum += net_.forward(tokens, targets);
    done += n;
    if (done < count) {
      net_.backward(scale);
    } else {
      net_.backward(scale, [&sync](int p) { sync.mark_ready(p); });
    }
    if (first_step_done_) rank_flops_ += 3.0 * net_.matmul_flops(n, T);
  }
  if (count == 0) sync.mark_all_ready();   // more ranks than sequences: send zeros
  sync.finish(1.0);
  clip_grad_norm(params, options_.grad_clip);
  const double lr = lr_warmup_cosine(ctx.step, options_.warmup_steps, options_.steps,
                                     options_.lr, options_.lr_min);
  optimizer_->step(params, lr);
  stats.lr = lr;
  steps_done_ = ctx.step + 1;
  // Loss per token: the Trainer divides loss_sum by examples.
  stats.examples = count * T;
  stats.items = count * T;
  if (first_step_done_) {
    train_seconds_ += seconds_since(t0);
    steady_tokens_ += B * T;
  }
  first_step_done_ = true;

  const bool last = steps_done_ == options_.steps;
  if (heldout_ != nullptr &&
      (last || (options_.eval_every > 0 && steps_done_ % options_.eval_every == 0))) {
    GptEval e = evaluate_heldout(*ctx.comm);
    log::info("gpt", "step " + std::to_string(e.step) + ": held-out loss " + fixed(e.loss, 4) +
                         " (perplexity " + fixed(std::exp(e.loss), 2) + ", " +
                         std::to_string(e.windows) + " windows), lr " + fixed(lr * 1e4, 3) + "e-4");
    evals_.push_back(e);
  }
  return stats;
}

GptEval Gpt::evaluate_heldout(Communicator& comm, int64_t windows) {
  LOOM_CHECK(heldout_ != nullptr, Error, "gpt: no held-out split to evaluate");
  const int64_t T = options_.seq_len, mb = net_.micro_batch();
  const int64_t available = heldout_->windows_per_epoch();
  int64_t total = windows > 0 ? windows : options_.eval_batches * options_.batch_size;
  total = std::min(total, available);
  const int W = comm.size(), r = comm.rank();
  const WindowSlice mine = rank_slice(0, total, r, W);
  const int64_t first = mine.begin, count = mine.count;
  double sums[2] = {0.0, 0.0};   // loss, tokens
  for (int64_t done = 0; done < count;) {
    const int64_t n = std::min(mb, count - done);
    load_windows(*heldout_, first + done, n);
    const auto [tokens, targets] = batch_on_device(n);
    sums[0] += net_.forward(tokens, targets);
    sums[1] += double(n * T);
    done += n;
  }
  comm.allreduce(Tensor(sums, {2}, DType::kF64), {});
  GptEval e;
  e.step = steps_done_;
  e.loss = sums[1] > 0 ? sums[0] / sums[1] : 0.0;
  e.windows = total;
  return e;
}

GptSyncReport Gpt::sync_report() const {
  return sync_ == nullptr ? GptSyncReport{} : grad_sync_report(sync_->stats(), blocking_allreduce_s_);
}

double Gpt::step_matmul_flops() const {
  return 3.0 * net_.matmul_flops(options_.batch_size, options_.seq_len);
}

std::vector<OptimizerSlot> Gpt::optimizer_slots() {
  return optimizer_slots_of(*optimizer_, net_.params());
}

std::vector<RankState> Gpt::rank_state() const {
  // The data cursor is global: windows consumed and optimizer steps (equal on every rank).
  // The held-out curve so far rides along (step, loss bits, windows per evaluation), so a
  // resumed run's eval.json shows the whole curve.
  std::vector<uint64_t> evals = {uint64_t(evals_.size())};
  for (const GptEval& e : evals_) {
    uint64_t bits = 0;
    std::memcpy(&bits, &e.loss, sizeof bits);
    evals.insert(evals.end(), {uint64_t(e.step), bits, uint64_t(e.windows)});
  }
  return {{"data", {uint64_t(steps_done_ * options_.batch_size), uint64_t(optimizer_->steps_taken())}},
          {"heldout", std::move(evals)}};
}

void Gpt::restore(const CheckpointReader& reader, int64_t step) {
  read_optimizer_slots(reader, *optimizer_, net_.params());
  const std::vector<uint64_t> data = reader.read_state("data");
  LOOM_CHECK(data.size() >= 2, DataError, reader.path() + ": /state/data has too few words");
  const auto windows = int64_t(data[0]);
  LOOM_CHECK(windows == step * options_.batch_size, DataError,
             reader.path() + ": the data cursor (" + std::to_string(windows) +
                 " windows) is not step x gpt.batch_size (" + std::to_string(step) + " x " +
                 std::to_string(options_.batch_size) + "); gpt.batch_size changed since the checkpoint");
  optimizer_->set_steps_taken(int64_t(data[1]));
  steps_done_ = step;
  evals_.clear();
  int64_t per_rank = 0;
  const std::vector<uint64_t> evals = reader.read_state("heldout", &per_rank);   // rank 0's row
  for (uint64_t i = 0; per_rank > 0 && i < evals[0] && 3 * i + 3 < uint64_t(per_rank); ++i) {
    GptEval e;
    e.step = int64_t(evals[3 * i + 1]);
    std::memcpy(&e.loss, &evals[3 * i + 2], sizeof e.loss);
    e.windows = int64_t(evals[3 * i + 3]);
    evals_.push_back(e);
  }
  if (reader.meta().world_size != comm_.size())
    log::info("gpt", "resuming at world size " + std::to_string(comm_.size()) + " from " +
                         std::to_string(reader.meta().world_size) + ": the same global window " +
                         std::to_string(windows) + ", each rank a new slice of every batch");
}

}  // namespace loom
