#include "models/bert/bert_net.h"

#include <string>
#include <utility>
#include <vector>

#include "core/buffer.h"
#include "core/kernels.h"
#include "core/rng.h"

namespace loom {
namespace {

constexpr int kIgnore = -1;

std::string layer_name(int l, const char* rest) {
  return "encoder.layer." + std::to_string(l) + "." + rest;
}

bool present(const Tensor& t) { return t.data() != nullptr; }

double value_at(const Tensor& t, int64_t i) {
  return t.dtype() == DType::kF64 ? t.f64()[i] : double(t.f32()[i]);
}

// `t` itself when it is in host memory; else a copy of it in `storage` (synchronises with
// the device), so that the host-side sums and counts below read the same values either way.
Tensor on_host(const Tensor& t, std::vector<uint8_t>& storage) {
  if (t.device().is_cpu()) return t;
  storage.resize(t.nbytes());
  copy_bytes(storage.data(), Device::cpu(), t.data(), t.device(), t.nbytes());
  return Tensor(storage.data(), t.shape(), t.dtype());
}

// Σ of a host (N) loss vector in double.
double sum_of(const Tensor& loss) {
  double s = 0.0;
  for (int64_t i = 0; i < loss.numel(); ++i) s += value_at(loss, i);
  return s;
}

// Rows of logits (N, V) whose label is not ignored: how many, and how many have their
// label as the (first) argmax. Host tensors; only the labelled rows are scanned.
template <class F>
void count_correct_t(const F* logits, const int32_t* y, int64_t N, int64_t V, int64_t& count,
                     int64_t& correct) {
  for (int64_t n = 0; n < N; ++n) {
    if (y[n] == kIgnore) continue;
    const F* row = logits + n * V;
    int64_t best = 0;
    for (int64_t v = 1; v < V; ++v)
      if (row[v] > row[best]) best = v;
    ++count;
    if (best == y[n]) ++correct;
  }
}

void count_correct(const Tensor& logits, const Tensor& labels, int64_t& count, int64_t& correct) {
  const int64_t N = logits.shape()[0], V = logits.shape()[1];
  if (logits.dtype() == DType::kF64)
    return count_correct_t(logits.f64(), labels.i32(), N, V, count, correct);
  count_correct_t(logits.f32(), labels.i32(), N, V, count, correct);
}

// An empty slot (position −1) has no token to predict: its label must be −1 too.
void check_empty_slots(const Tensor& positions, const Tensor& labels) {
  const int64_t B = positions.shape()[0], P = positions.shape()[1];
  LOOM_CHECK(labels.shape() == positions.shape(), Error,
             "BertNet::forward: mlm_labels must be mlm_positions' shape " +
                 positions.shape().str() + "; got " + labels.shape().str());
  const int32_t* pos = positions.i32();
  const int32_t* y = labels.i32();
  for (int64_t n = 0; n < B * P; ++n)
    LOOM_CHECK(pos[n] != -1 || y[n] == kIgnore, Error,
               "BertNet::forward: mlm slot [" + std::to_string(n / P) + ", " +
                   std::to_string(n % P) + "] is empty (position -1) but has label " +
                   std::to_string(y[n]) + "; an empty slot's label must be -1");
}

}  // namespace

void fill_key_mask(Tensor key_mask, Tensor lengths) {
  const int64_t B = key_mask.shape()[0], T = key_mask.shape()[1];
  LOOM_CHECK(lengths.shape() == Shape{B}, Error,
             "fill_key_mask: lengths must be " + Shape{B}.str() + "; got " + lengths.shape().str());
  int32_t* mask = key_mask.i32();
  const int32_t* len = lengths.i32();
  for (int64_t b = 0; b < B; ++b) {
    LOOM_CHECK(len[b] >= 1 && len[b] <= T, Error,
               "fill_key_mask: lengths[" + std::to_string(b) + "] = " + std::to_string(len[b]) +
                   " is outside [1, " + std::to_string(T) + "]");
    for (int64_t t = 0; t < T; ++t) mask[b * T + t] = t < len[b] ? 1 : 0;
  }
}

BertNet::BertNet(const BertShape& shape, int64_t micro_batch, int64_t seq_len,
                 int64_t max_predictions, Device device, DType dtype)
    : shape_(shape),
      micro_batch_(micro_batch),
      seq_len_(seq_len),
      max_predictions_(max_predictions),
      acts_(dtype),
      scratch_(dtype),
      cls_positions_(size_t(micro_batch) * sizeof(int32_t), device) {
  LOOM_ASSERT(shape.hidden % shape.n_head == 0, "hidden must be a multiple of n_head");
  LOOM_ASSERT(seq_len >= 1 && seq_len <= shape.max_position, "seq_len outside [1, max_position]");
  LOOM_ASSERT(micro_batch >= 1 && max_predictions >= 1, "micro_batch and max_predictions >= 1");
  LOOM_ASSERT(shape.pad_id >= 0 && shape.pad_id < shape.vocab_size,
              "pad_id outside the vocabulary");
  declare_params();
  params_.finalize(device, dtype);
  declare_acts();
  acts_.finalize(device);
  scratch_.finalize(device);
}

BertNet::BertNet(const BertShape& shape, LayoutOnly)
    : shape_(shape), micro_batch_(0), seq_len_(0), max_predictions_(0), acts_(DType::kF32), scratch_(DType::kF32) {
  LOOM_ASSERT(shape.hidden % shape.n_head == 0, "hidden must be a multiple of n_head");
  declare_params();
}

ParamStore BertNet::parameter_layout(const BertShape& shape) {
  BertNet layout(shape, LayoutOnly{});
  return std::move(layout.params_);
}

// Declaration order is the reverse of backward's (Note [Bucket order] in dist/grad_sync.h):
// embeddings, the blocks, the MLM transform and bias, the pooler, the NSP head.
void BertNet::declare_params() {
  const int64_t C = shape_.hidden, V = shape_.vocab_size, I = shape_.intermediate;
  word_ = params_.declare("embeddings.word_embeddings.weight", {V, C});
  position_ = params_.declare("embeddings.position_embeddings.weight",
                              {shape_.max_position, C});
  type_ = params_.declare("embeddings.token_type_embeddings.weight", {shape_.type_vocab, C});
  emb_ln_w_ = params_.declare("embeddings.LayerNorm.weight", {C});
  emb_ln_b_ = params_.declare("embeddings.LayerNorm.bias", {C});
  for (int l = 0; l < shape_.n_layer; ++l) {
    BertBlockParams p{};
    // query, key, value packed: one (3C, C) weight and one (3C) bias for one GEMM.
    p.query_w = params_.declare(layer_name(l, "attention.self.query.weight"), {C, C});
    p.key_w = params_.declare_packed(layer_name(l, "attention.self.key.weight"), {C, C});
    p.value_w = params_.declare_packed(layer_name(l, "attention.self.value.weight"), {C, C});
    p.query_b = params_.declare(layer_name(l, "attention.self.query.bias"), {C});
    p.key_b = params_.declare_packed(layer_name(l, "attention.self.key.bias"), {C});
    p.value_b = params_.declare_packed(layer_name(l, "attention.self.value.bias"), {C});
    p.attn_out_w = params_.declare(layer_name(l, "attention.output.dense.weight"), {C, C});
    p.attn_out_b = params_.declare(layer_name(l, "attention.output.dense.bias"), {C});
    p.attn_ln_w = params_.declare(layer_name(l, "attention.output.LayerNorm.weight"), {C});
    p.attn_ln_b = params_.declare(layer_name(l, "attention.output.LayerNorm.bias"), {C});
    p.inter_w = params_.declare(layer_name(l, "intermediate.dense.weight"), {I, C});
    p.inter_b = params_.declare(layer_name(l, "intermediate.dense.bias"), {I});
    p.out_w = params_.declare(layer_name(l, "output.dense.weight"), {C, I});
    p.out_b = params_.declare(layer_name(l, "output.dense.bias"), {C});
    p.out_ln_w = params_.declare(layer_name(l, "output.LayerNorm.weight"), {C});
    p.out_ln_b = params_.declare(layer_name(l, "output.LayerNorm.bias"), {C});
    blocks_.push_back(p);
  }
  mlm_dense_w_ = params_.declare("cls.predictions.transform.dense.weight", {C, C});
  mlm_dense_b_ = params_.declare("cls.predictions.transform.dense.bias", {C});
  mlm_ln_w_ = params_.declare("cls.predictions.transform.LayerNorm.weight", {C});
  mlm_ln_b_ = params_.declare("cls.predictions.transform.LayerNorm.bias", {C});
  mlm_bias_ = params_.declare("cls.predictions.bias", {V});
  pool_w_ = params_.declare("pooler.dense.weight", {C, C});
  pool_b_ = params_.declare("pooler.dense.bias", {C});
  nsp_w_ = params_.declare("cls.seq_relationship.weight", {2, C});
  nsp_b_ = params_.declare("cls.seq_relationship.bias", {2});
}

// Note [BERT activations], at the largest micro-batch.
void BertNet::declare_acts() {
  const int64_t B = micro_batch_, T = seq_len_, P = max_predictions_, N = B * T;
  const int64_t C = shape_.hidden, H = shape_.n_head, I = shape_.intermediate;
  const int64_t V = shape_.vocab_size, M = B * P;
  // Else lse only: O(T) per head (Note [BERT activations]).
  const bool save_p = attention_saves_probabilities(params_.device());
  emb_ = acts_.declare("emb", {N * C});
  x0_ = acts_.declare("x0", {N * C});
  x0_mean_ = acts_.declare("x0_mean", {N});
  x0_rstd_ = acts_.declare("x0_rstd", {N});
  for (int l = 0; l < shape_.n_layer; ++l) {
    BlockActs a{};
    const std::string p = "layer." + std::to_string(l) + ".";
    a.qkv = acts_.declare(p + "qkv", {N * 3 * C});
    a.att = save_p ? acts_.declare(p + "att", {B * H * T * T}) : -1;
    a.att_lse = acts_.declare(p + "att_lse", {B * H * T});
    a.atty = acts_.declare(p + "atty", {N * C});
    a.res1 = acts_.declare(p + "res1", {N * C});
    a.ln1 = acts_.declare(p + "ln1", {N * C});
    a.ln1_mean = acts_.declare(p + "ln1_mean", {N});
    a.ln1_rstd = acts_.declare(p + "ln1_rstd", {N});
    a.fc = acts_.declare(p + "fc", {N * I});
    a.gelu = acts_.declare(p + "gelu", {N * I});
    a.res2 = acts_.declare(p + "res2", {N * C});
    a.ln2 = acts_.declare(p + "ln2", {N * C});
    a.ln2_mean = acts_.declare(p + "ln2_mean", {N});
    a.ln2_rstd = acts_.declare(p + "ln2_rstd", {N});
    block_acts_.push_back(a);
  }
  cls_ = acts_.declare("cls", {B * C});
  pooled_ = acts_.declare("pooled", {B * C});
  nsp_logits_ = acts_.declare("nsp_logits", {B * 2});
  nsp_loss_ = acts_.declare("nsp_loss", {B});
  nsp_lse_ = acts_.declare("nsp_lse", {B});
  rows_ = acts_.declare("mlm_rows", {M * C});
  mfc_ = acts_.declare("mlm_fc", {M * C});
  mgelu_ = acts_.declare("mlm_gelu", {M * C});
  mln_ = acts_.declare("mlm_ln", {M * C});
  mln_mean_ = acts_.declare("mlm_ln_mean", {M});
  mln_rstd_ = acts_.declare("mlm_ln_rstd", {M});
  logits_ = acts_.declare("mlm_logits", {M * V});
  mlm_loss_ = acts_.declare("mlm_loss", {M});
  mlm_lse_ = acts_.declare("mlm_lse", {M});

  d_res_ = scratch_.declare("d_res", {N * C});
  d_tmp_ = scratch_.declare("d_tmp", {N * C});
  d_ln_ = scratch_.declare("d_ln", {N * C});
  d_qkv_ = scratch_.declare("d_qkv", {N * 3 * C});
  d_att_ = scratch_.declare("d_att", {save_p ? B * H * T * T : B * H * T});
  d_fc_ = scratch_.declare("d_fc", {N * I});
  d_cls_ = scratch_.declare("d_cls", {B * C});
  d_pool_ = scratch_.declare("d_pool", {B * C});
  d_rows_ = scratch_.declare("d_rows", {M * C});
  d_mrows_ = scratch_.declare("d_mrows", {M * C});
  pad_row_ = scratch_.declare("pad_row", {C});
}

Tensor BertNet::act(int index, Shape shape) const {
  if (index < 0) return Tensor{};   // not kept on this device (att: Note [BERT activations])
  return acts_.view(index).slice(0, shape.numel()).view(shape);
}

Tensor BertNet::sc(int index, Shape shape) const {
  return scratch_.view(index).slice(0, shape.numel()).view(shape);
}

Tensor BertNet::qkv_weight(const BertBlockParams& p) const {
  const int64_t C = shape_.hidden;
  return params_.packed_value(p.query_w, 3, {3 * C, C});
}
Tensor BertNet::qkv_bias(const BertBlockParams& p) const {
  return params_.packed_value(p.query_b, 3, {3 * int64_t{shape_.hidden}});
}
Tensor BertNet::qkv_weight_grad(const BertBlockParams& p) const {
  const int64_t C = shape_.hidden;
  return params_.packed_grad(p.query_w, 3, {3 * C, C});
}
Tensor BertNet::qkv_bias_grad(const BertBlockParams& p) const {
  return params_.packed_grad(p.query_b, 3, {3 * int64_t{shape_.hidden}});
}

Tensor BertNet::cls_positions_tensor(int64_t B) const {
  return Tensor(cls_positions_.data(), {B, 1}, DType::kI32, cls_positions_.device());
}

Tensor BertNet::hidden_out(int64_t B, int64_t T) const {
  const int64_t C = shape_.hidden;
  return act(block_acts_.empty() ? x0_ : block_acts_.back().ln2, {B, T, C});
}

void BertNet::init(uint64_t seed) {
  // On a GPU the draws go into a host copy of the packed layout (zero padding), uploaded
  // at the end: the same values as on the CPU.
  const bool on_host = params_.device().is_cpu();
  Buffer staging = on_host ? Buffer() : Buffer(params_.values().nbytes());
  auto value = [&](int index) {
    if (on_host) return params_.value(index);
    const ParamStore::Entry& e = params_.entry(index);
    return Tensor(static_cast<char*>(staging.data()) + e.offset * int64_t(dtype_size(dtype())), e.shape,
                  dtype());
  };
  Rng rng(seed, 0, RngPurpose::kInit);
  const bool f64 = dtype() == DType::kF64;
  auto set = [&](const Tensor& t, int64_t i, float v) {
    if (f64) {
      t.f64()[i] = double(v);
    } else {
      t.f32()[i] = v;
    }
  };
  // Declaration order, so that the draws depend on nothing but the shape. HF's
  // _init_weights: Linear and Embedding N(0, initializer_range = 0.02), biases 0,
  // LayerNorm 1 / 0, and the padding_idx row of the word embeddings 0.
  for (int i = 0; i < params_.size(); ++i) {
    const std::string& name = params_.entry(i).name;
    Tensor t = value(i);
    const bool ln_weight = name.find("LayerNorm.weight") != std::string::npos;
    const bool zero = name.ends_with(".bias");
    for (int64_t k = 0; k < t.numel(); ++k)
      set(t, k, ln_weight ? 1.0f : zero ? 0.0f : static_cast<float>(rng.normal()) * 0.02f);
  }
  const int64_t C = shape_.hidden;
  Tensor word = value(word_);
  for (int64_t c = 0; c < C; ++c) set(word, int64_t{shape_.pad_id} * C + c, 0.0f);
  if (!on_host)
    copy_bytes(params_.values().data(), params_.device(), staging.data(), Device::cpu(), staging.size());
}

BertLosses BertNet::forward(const BertInputs& in) {
  LOOM_ASSERT(in.tokens.shape().rank() == 2 && in.mlm_positions.shape().rank() == 2,
              "BertNet::forward: tokens (B, T) and mlm_positions (B, P)");
  const int64_t B = in.tokens.shape()[0], T = in.tokens.shape()[1];
  const int64_t P = in.mlm_positions.shape()[1];
  LOOM_ASSERT(B >= 1 && B <= micro_batch_ && T >= 1 && T <= seq_len_,
              "BertNet::forward: batch or length outside the arena");
  LOOM_ASSERT(P >= 1 && P <= max_predictions_,
              "BertNet::forward: mlm_positions must be (B, P) with 1 <= P <= max_predictions");
  const int64_t C = shape_.hidden, H = shape_.n_head, I = shape_.intermediate, N = B * T;
  const double eps = shape_.ln_eps;
  in_ = in;
  B_ = B;
  T_ = T;
  P_ = P;
  Tensor emb = act(emb_, {B, T, C}), x0 = act(x0_, {B, T, C});
  embedding_forward(emb, in.tokens, in.segments, weight(word_), weight(position_), weight(type_));
  layernorm_forward(x0, act(x0_mean_, {N}), act(x0_rstd_, {N}), emb, weight(emb_ln_w_),
                    weight(emb_ln_b_), eps);
  for (size_t l = 0; l < blocks_.size(); ++l) {
    const BertBlockParams& p = blocks_[l];
    const BlockActs& a = block_acts_[l];
    Tensor x_in = l == 0 ? x0 : act(block_acts_[l - 1].ln2, {B, T, C});
    Tensor qkv = act(a.qkv, {B, T, 3 * C}), att = act(a.att, {B, H, T, T});
    Tensor att_lse = act(a.att_lse, {B, H, T});
    Tensor atty = act(a.atty, {B, T, C}), res1 = act(a.res1, {B, T, C});
    Tensor ln1 = act(a.ln1, {B, T, C}), fc = act(a.fc, {B, T, I}), gelu = act(a.gelu, {B, T, I});
    Tensor res2 = act(a.res2, {B, T, C}), ln2 = act(a.ln2, {B, T, C});

    linear_forward(qkv, x_in, qkv_weight(p), qkv_bias(p));
    attention_forward(atty, att_lse, att, qkv, in.key_mask, shape_.n_head, /*causal=*/false);
    linear_forward(res1, atty, weight(p.attn_out_w), weight(p.attn_out_b));
    residual_forward(res1, res1, x_in);
    layernorm_forward(ln1, act(a.ln1_mean, {N}), act(a.ln1_rstd, {N}), res1, weight(p.attn_ln_w),
                      weight(p.attn_ln_b), eps);
    linear_forward(fc, ln1, weight(p.inter_w), weight(p.inter_b));
    gelu_forward(gelu, fc, GeluForm::kErf);
    linear_forward(res2, gelu, weight(p.out_w), weight(p.out_b));
    residual_forward(res2, res2, ln1);
    layernorm_forward(ln2, act(a.ln2_mean, {N}), act(a.ln2_rstd, {N}), res2, weight(p.out_ln_w),
                      weight(p.out_ln_b), eps);
  }
  BertLosses losses;
  forward_heads(in, losses);
  return losses;
}

void BertNet::forward_heads(const BertInputs& in, BertLosses& out) {
  const int64_t B = B_, T = T_, P = P_, C = shape_.hidden, V = shape_.vocab_size, M = B * P;
  Tensor h = hidden_out(B, T);
  // Pooler and NSP: [CLS] (position 0) -> dense -> tanh -> seq_relationship.
  Tensor cls_positions = cls_positions_tensor(B);
  Tensor cls = act(cls_, {B, 1, C}), pooled = act(pooled_, {B, C});
  Tensor nsp_logits = act(nsp_logits_, {B, 2});
  gather_rows_forward(cls, h, cls_positions);
  linear_forward(pooled, cls.view({B, C}), weight(pool_w_), weight(pool_b_));
  tanh_forward(pooled, pooled);
  linear_forward(nsp_logits, pooled, weight(nsp_w_), weight(nsp_b_));
  if (present(in.nsp_labels)) {
    Tensor loss = act(nsp_loss_, {B});
    softmax_cross_entropy_forward(loss, act(nsp_lse_, {B}), nsp_logits, in.nsp_labels, kIgnore);
    out.nsp_loss = sum_of(on_host(loss, host_loss_));
    if (count_correct_)
      count_correct(on_host(nsp_logits, host_logits_), on_host(in.nsp_labels, host_labels_),
                    out.nsp_count, out.nsp_correct);
  }
  // MLM on the gathered rows (Note [MLM positions]); the decoder is tied to the word
  // embeddings, with its own bias.
  Tensor rows = act(rows_, {B, P, C}), mfc = act(mfc_, {M, C}), mgelu = act(mgelu_, {M, C});
  Tensor mln = act(mln_, {M, C}), logits = act(logits_, {M, V});
  gather_rows_forward(rows, h, in.mlm_positions);
  linear_forward(mfc, rows.view({M, C}), weight(mlm_dense_w_), weight(mlm_dense_b_));
  gelu_forward(mgelu, mfc, GeluForm::kErf);
  layernorm_forward(mln, act(mln_mean_, {M}), act(mln_rstd_, {M}), mgelu, weight(mlm_ln_w_),
                    weight(mlm_ln_b_), shape_.ln_eps);
  linear_forward(logits, mln, weight(word_), weight(mlm_bias_));
  if (present(in.mlm_labels)) {
    const Tensor labels = on_host(in.mlm_labels, host_labels_);
    check_empty_slots(on_host(in.mlm_positions, host_positions_), labels);
    Tensor loss = act(mlm_loss_, {M});
    softmax_cross_entropy_forward(loss, act(mlm_lse_, {M}), logits, in.mlm_labels.view({M}),
                                  kIgnore);
    out.mlm_loss = sum_of(on_host(loss, host_loss_));
    // On a GPU the (M, V) logits come down for the argmax: M·V·4 bytes per micro-batch
    // (an argmax kernel would copy M ints; the accuracy is only reported).
    if (count_correct_)
      count_correct(on_host(logits, host_logits_), labels.view({M}), out.mlm_count, out.mlm_correct);
  }
}

void BertNet::backward(double mlm_scale, double nsp_scale, const std::function<void(int)>& ready) {
  LOOM_ASSERT(present(in_.mlm_labels) || present(in_.nsp_labels),
              "BertNet::backward without a forward with labels");
  const int64_t B = B_, T = T_, C = shape_.hidden, H = shape_.n_head, I = shape_.intermediate;
  const int64_t N = B * T;
  auto mark = [&](int index) {
    if (ready) ready(index);
  };
  backward_heads(mlm_scale, nsp_scale, mark);

  // d_res: the gradient of the hidden states leaving block l, walked from the top down.
  Tensor d_res = sc(d_res_, {B, T, C}), d_tmp = sc(d_tmp_, {B, T, C}), d_ln = sc(d_ln_, {B, T, C});
  const bool saved_p = !block_acts_.empty() && block_acts_[0].att >= 0;
  Tensor d_qkv = sc(d_qkv_, {B, T, 3 * C});
  Tensor d_att = saved_p ? sc(d_att_, {B, H, T, T}) : sc(d_att_, {B, H, T});
  Tensor d_fc = sc(d_fc_, {B, T, I});
  for (size_t li = blocks_.size(); li-- > 0;) {
    const BertBlockParams& p = blocks_[li];
    const BlockActs& a = block_acts_[li];
    Tensor x_in = li == 0 ? act(x0_, {B, T, C}) : act(block_acts_[li - 1].ln2, {B, T, C});
    Tensor qkv = act(a.qkv, {B, T, 3 * C}), att = act(a.att, {B, H, T, T});
    Tensor att_lse = act(a.att_lse, {B, H, T});
    Tensor atty = act(a.atty, {B, T, C}), res1 = act(a.res1, {B, T, C});
    Tensor ln1 = act(a.ln1, {B, T, C}), fc = act(a.fc, {B, T, I}), gelu = act(a.gelu, {B, T, I});
    Tensor res2 = act(a.res2, {B, T, C});

    // MLP: x_out = LayerNorm(ln1 + output.dense(gelu(intermediate.dense(ln1))))
    layernorm_backward(d_tmp, grad(p.out_ln_w), grad(p.out_ln_b), d_res, res2, weight(p.out_ln_w),
                       act(a.ln2_mean, {N}), act(a.ln2_rstd, {N}));
    mark(p.out_ln_b);
    mark(p.out_ln_w);
    linear_backward(d_fc, grad(p.out_w), grad(p.out_b), d_tmp, gelu, weight(p.out_w));
    mark(p.out_b);
    mark(p.out_w);
    gelu_backward(d_fc, d_fc, fc, GeluForm::kErf);
    linear_backward(d_ln, grad(p.inter_w), grad(p.inter_b), d_fc, ln1, weight(p.inter_w));
    mark(p.inter_b);
    mark(p.inter_w);
    residual_backward(d_ln, d_tmp);   // d_ln: the whole gradient of ln1

    // Attention: ln1 = LayerNorm(x_in + attention.output.dense(attention(qkv(x_in))))
    layernorm_backward(d_res, grad(p.attn_ln_w), grad(p.attn_ln_b), d_ln, res1,
                       weight(p.attn_ln_w), act(a.ln1_mean, {N}), act(a.ln1_rstd, {N}));
    mark(p.attn_ln_b);
    mark(p.attn_ln_w);
    linear_backward(d_tmp, grad(p.attn_out_w), grad(p.attn_out_b), d_res, atty,
                    weight(p.attn_out_w));
    mark(p.attn_out_b);
    mark(p.attn_out_w);
    attention_backward(d_qkv, d_att, d_tmp, qkv, atty, att_lse, att, in_.key_mask, shape_.n_head,
                       /*causal=*/false);
    linear_backward(d_ln, qkv_weight_grad(p), qkv_bias_grad(p), d_qkv, x_in, qkv_weight(p));
    for (int i : {p.value_b, p.key_b, p.query_b, p.value_w, p.key_w, p.query_w}) mark(i);
    residual_backward(d_res, d_ln);   // d_res: now the gradient of x_in
  }
  backward_embeddings(mark);
}

// The heads' gradients, and the gradient of the encoder's output into d_res.
void BertNet::backward_heads(double mlm_scale, double nsp_scale,
                             const std::function<void(int)>& mark) {
  const int64_t B = B_, T = T_, P = P_, C = shape_.hidden, V = shape_.vocab_size, M = B * P;
  Tensor d_res = sc(d_res_, {B, T, C}), d_tmp = sc(d_tmp_, {B, T, C});
  const bool nsp = present(in_.nsp_labels), mlm = present(in_.mlm_labels);
  // NSP: the loss's gradient overwrites the logits.
  Tensor cls_positions = cls_positions_tensor(B);
  if (nsp) {
    Tensor nsp_logits = act(nsp_logits_, {B, 2}), pooled = act(pooled_, {B, C});
    Tensor d_pool = sc(d_pool_, {B, C}), d_cls = sc(d_cls_, {B, 1, C});
    softmax_cross_entropy_backward(nsp_logits, nsp_logits, act(nsp_lse_, {B}), in_.nsp_labels,
                                   kIgnore, nsp_scale);
    linear_backward(d_pool, grad(nsp_w_), grad(nsp_b_), nsp_logits, pooled, weight(nsp_w_));
    tanh_backward(d_pool, d_pool, pooled);
    linear_backward(d_cls.view({B, C}), grad(pool_w_), grad(pool_b_), d_pool,
                    act(cls_, {B, C}), weight(pool_w_));
    // The [CLS] row's gradient, into d_res directly when there is no MLM gradient to add.
    gather_rows_backward(mlm ? d_tmp : d_res, d_cls, cls_positions);
  }
  mark(nsp_b_);
  mark(nsp_w_);
  mark(pool_b_);
  mark(pool_w_);
  if (mlm) {
    Tensor logits = act(logits_, {M, V}), mln = act(mln_, {M, C});
    Tensor d_rows = sc(d_rows_, {M, C}), d_mrows = sc(d_mrows_, {M, C});
    softmax_cross_entropy_backward(logits, logits, act(mlm_lse_, {M}), in_.mlm_labels.view({M}),
                                   kIgnore, mlm_scale);
    // The tied decoder adds to the word embeddings' gradient (complete only at the end).
    linear_backward(d_mrows, grad(word_), grad(mlm_bias_), logits, mln, weight(word_));
    mark(mlm_bias_);
    layernorm_backward(d_rows, grad(mlm_ln_w_), grad(mlm_ln_b_), d_mrows, act(mgelu_, {M, C}),
                       weight(mlm_ln_w_), act(mln_mean_, {M}), act(mln_rstd_, {M}));
    gelu_backward(d_rows, d_rows, act(mfc_, {M, C}), GeluForm::kErf);
    linear_backward(d_mrows, grad(mlm_dense_w_), grad(mlm_dense_b_), d_rows,
                    act(rows_, {M, C}), weight(mlm_dense_w_));
    gather_rows_backward(d_res, d_mrows.view({B, P, C}), in_.mlm_positions);
    if (nsp) residual_backward(d_res, d_tmp);
  } else {
    mark(mlm_bias_);
  }
  mark(mlm_ln_b_);
  mark(mlm_ln_w_);
  mark(mlm_dense_b_);
  mark(mlm_dense_w_);
}

// From d_res, the gradient of x0 = LayerNorm(emb), into the three tables; the pad row of
// the word embeddings keeps only the decoder's part (Note [HF's padding semantics]).
void BertNet::backward_embeddings(const std::function<void(int)>& mark) {
  const int64_t B = B_, T = T_, C = shape_.hidden, N = B * T;
  Tensor d_res = sc(d_res_, {B, T, C}), d_tmp = sc(d_tmp_, {B, T, C});
  layernorm_backward(d_tmp, grad(emb_ln_w_), grad(emb_ln_b_), d_res, act(emb_, {B, T, C}),
                     weight(emb_ln_w_), act(x0_mean_, {N}), act(x0_rstd_, {N}));
  mark(emb_ln_b_);
  mark(emb_ln_w_);
  Tensor word_grad = grad(word_), pad_row = sc(pad_row_, {C});
  const size_t row_bytes = size_t(C) * dtype_size(dtype());
  char* pad_grad = static_cast<char*>(word_grad.data()) + size_t(shape_.pad_id) * row_bytes;
  copy_bytes(pad_row.data(), pad_row.device(), pad_grad, word_grad.device(), row_bytes);
  embedding_backward(word_grad, grad(position_), grad(type_), d_tmp, in_.tokens, in_.segments);
  copy_bytes(pad_grad, word_grad.device(), pad_row.data(), pad_row.device(), row_bytes);
  mark(type_);
  mark(position_);
  mark(word_);
}

Tensor BertNet::mlm_logits() const { return act(logits_, {B_ * P_, shape_.vocab_size}); }

Tensor BertNet::nsp_logits() const { return act(nsp_logits_, {B_, 2}); }

std::vector<uint8_t> BertNet::decay_mask(bool decay_embeddings) const {
  std::vector<uint8_t> mask(size_t(params_.size()), 0);
  for (const BertBlockParams& p : blocks_)
    for (int w : {p.query_w, p.key_w, p.value_w, p.attn_out_w, p.inter_w, p.out_w})
      mask[size_t(w)] = 1;
  for (int w : {mlm_dense_w_, pool_w_, nsp_w_}) mask[size_t(w)] = 1;
  if (decay_embeddings)
    for (int e : {word_, position_, type_}) mask[size_t(e)] = 1;
  return mask;
}

double BertNet::matmul_flops(int64_t B, int64_t T, int64_t P) const {
  const double C = shape_.hidden, I = shape_.intermediate, V = shape_.vocab_size;
  const double N = double(B * T), M = double(B * P);
  const double per_block = 2.0 * N * (3 * C * C + C * C + 2 * C * I) +
                           2.0 * 2.0 * double(B) * double(T) * double(T) * C;   // q·kᵀ, att·v
  const double pooler = 2.0 * double(B) * (C * C + 2 * C);
  const double mlm = 2.0 * M * (C * C + V * C);
  return shape_.n_layer * per_block + pooler + mlm;
}

}  // namespace loom
