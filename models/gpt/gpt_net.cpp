#include "models/gpt/gpt_net.h"

#include <cmath>
#include <string>

#include "core/buffer.h"
#include "core/kernels.h"
#include "core/rng.h"

namespace loom {
namespace {

constexpr int kIgnore = -1;

std::string block_name(int l, const char* rest) { return "h." + std::to_string(l) + "." + rest; }

}  // namespace

GptNet::GptNet(const GptShape& shape, int64_t micro_batch, int64_t seq_len, Device device,
               DType dtype)
    : shape_(shape), micro_batch_(micro_batch), seq_len_(seq_len), acts_(dtype), scratch_(dtype) {
  LOOM_ASSERT(shape.d_model % shape.n_head == 0, "d_model must be a multiple of n_head");
  LOOM_ASSERT(seq_len >= 1 && seq_len <= shape.n_positions, "seq_len outside [1, n_positions]");
  const int64_t C = shape.d_model, V = shape.vocab_size, P = shape.n_positions;
  const bool b = shape.bias;
  // Parameters in GPT-2's order: embeddings, the blocks, the final LayerNorm. GradSync's
  // buckets take them in reverse (Note [Bucket order]), matching backward's order.
  wte_ = params_.declare("wte.weight", {V, C});
  wpe_ = params_.declare("wpe.weight", {P, C});
  for (int l = 0; l < shape.n_layer; ++l) {
    GptBlockParams p{};
    p.ln_1_w = params_.declare(block_name(l, "ln_1.weight"), {C});
    p.ln_1_b = b ? params_.declare(block_name(l, "ln_1.bias"), {C}) : -1;
    p.c_attn_w = params_.declare(block_name(l, "attn.c_attn.weight"), {3 * C, C});
    p.c_attn_b = b ? params_.declare(block_name(l, "attn.c_attn.bias"), {3 * C}) : -1;
    p.attn_proj_w = params_.declare(block_name(l, "attn.c_proj.weight"), {C, C});
    p.attn_proj_b = b ? params_.declare(block_name(l, "attn.c_proj.bias"), {C}) : -1;
    p.ln_2_w = params_.declare(block_name(l, "ln_2.weight"), {C});
    p.ln_2_b = b ? params_.declare(block_name(l, "ln_2.bias"), {C}) : -1;
    p.c_fc_w = params_.declare(block_name(l, "mlp.c_fc.weight"), {4 * C, C});
    p.c_fc_b = b ? params_.declare(block_name(l, "mlp.c_fc.bias"), {4 * C}) : -1;
    p.mlp_proj_w = params_.declare(block_name(l, "mlp.c_proj.weight"), {C, 4 * C});
    p.mlp_proj_b = b ? params_.declare(block_name(l, "mlp.c_proj.bias"), {C}) : -1;
    blocks_.push_back(p);
  }
  ln_f_w_ = params_.declare("ln_f.weight", {C});
  ln_f_b_ = b ? params_.declare("ln_f.bias", {C}) : -1;
  params_.finalize(device, dtype);

  // Activations (Note [GPT activations]) at the largest micro-batch.
  const int64_t B = micro_batch, T = seq_len, H = shape.n_head, N = B * T;
  const bool save_p = attention_saves_probabilities(device);   // else lse only: O(T) per head
  for (int l = 0; l < shape.n_layer; ++l) {
    BlockActs a{};
    const std::string p = "h." + std::to_string(l) + ".";
    a.x_in = acts_.declare(p + "x", {N * C});
    a.ln1 = acts_.declare(p + "ln1", {N * C});
    a.ln1_mean = acts_.declare(p + "ln1_mean", {N});
    a.ln1_rstd = acts_.declare(p + "ln1_rstd", {N});
    a.qkv = acts_.declare(p + "qkv", {N * 3 * C});
    a.att = save_p ? acts_.declare(p + "att", {B * H * T * T}) : -1;
    a.att_lse = acts_.declare(p + "att_lse", {B * H * T});
    a.atty = acts_.declare(p + "atty", {N * C});
    a.res1 = acts_.declare(p + "res1", {N * C});
    a.ln2 = acts_.declare(p + "ln2", {N * C});
    a.ln2_mean = acts_.declare(p + "ln2_mean", {N});
    a.ln2_rstd = acts_.declare(p + "ln2_rstd", {N});
    a.fc = acts_.declare(p + "fc", {N * 4 * C});
    a.gelu = acts_.declare(p + "gelu", {N * 4 * C});
    block_acts_.push_back(a);
  }
  x_final_ = acts_.declare("x_final", {N * C});
  lnf_ = acts_.declare("ln_f", {N * C});
  lnf_mean_ = acts_.declare("ln_f_mean", {N});
  lnf_rstd_ = acts_.declare("ln_f_rstd", {N});
  logits_ = acts_.declare("logits", {N * V});
  loss_ = acts_.declare("loss", {N});
  lse_ = acts_.declare("lse", {N});
  acts_.finalize(device);

  d_res_ = scratch_.declare("d_res", {N * C});
  d_tmp_ = scratch_.declare("d_tmp", {N * C});
  d_ln_ = scratch_.declare("d_ln", {N * C});
  d_qkv_ = scratch_.declare("d_qkv", {N * 3 * C});
  d_att_ = scratch_.declare("d_att", {save_p ? B * H * T * T : B * H * T});
  d_fc_ = scratch_.declare("d_fc", {N * 4 * C});
  scratch_.finalize(device);
}

Tensor GptNet::act(int index, Shape shape) const {
  if (index < 0) return Tensor{};   // not kept on this device (att: Note [GPT activations])
  return acts_.view(index).slice(0, shape.numel()).view(shape);
}

void GptNet::init(uint64_t seed) {
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
  const float std_w = 0.02f;
  const auto std_proj = static_cast<float>(0.02 / std::sqrt(2.0 * shape_.n_layer));
  const bool f64 = dtype() == DType::kF64;
  auto set = [&](const Tensor& t, int64_t i, float v) {
    if (f64) {
      t.f64()[i] = double(v);
    } else {
      t.f32()[i] = v;
    }
  };
  auto normal = [&](int index, float sd) {
    Tensor t = value(index);
    for (int64_t i = 0; i < t.numel(); ++i) set(t, i, static_cast<float>(rng.normal()) * sd);
  };
  auto fill = [&](int index, float v) {
    if (index < 0) return;
    Tensor t = value(index);
    for (int64_t i = 0; i < t.numel(); ++i) set(t, i, v);
  };
  // Declaration order, so that the draws do not depend on anything but the shape.
  normal(wte_, std_w);
  normal(wpe_, std_w);
  for (const GptBlockParams& p : blocks_) {
    fill(p.ln_1_w, 1.0f);
    fill(p.ln_1_b, 0.0f);
    normal(p.c_attn_w, std_w);
    fill(p.c_attn_b, 0.0f);
    normal(p.attn_proj_w, std_proj);
    fill(p.attn_proj_b, 0.0f);
    fill(p.ln_2_w, 1.0f);
    fill(p.ln_2_b, 0.0f);
    normal(p.c_fc_w, std_w);
    fill(p.c_fc_b, 0.0f);
    normal(p.mlp_proj_w, std_proj);
    fill(p.mlp_proj_b, 0.0f);
  }
  fill(ln_f_w_, 1.0f);
  fill(ln_f_b_, 0.0f);
  if (!on_host)
    copy_bytes(params_.values().data(), params_.device(), staging.data(), Device::cpu(), staging.size());
}

double GptNet::forward(Tensor tokens, Tensor targets) {
  const int64_t B = tokens.shape()[0], T = tokens.shape()[1];
  LOOM_ASSERT(B >= 1 && B <= micro_batch_ && T >= 1 && T <= seq_len_,
              "GptNet::forward: batch or length outside the arena");
  const int64_t C = shape_.d_model, H = shape_.n_head, V = shape_.vocab_size, N = B * T;
  const double eps = shape_.ln_eps;
  tokens_ = tokens;
  targets_ = targets;
  B_ = B;
  T_ = T;
  Tensor x = act(block_acts_.empty() ? x_final_ : block_acts_[0].x_in, {B, T, C});
  embedding_forward(x, tokens, Tensor{}, weight(wte_), weight(wpe_), Tensor{});
  for (size_t l = 0; l < blocks_.size(); ++l) {
    const GptBlockParams& p = blocks_[l];
    const BlockActs& a = block_acts_[l];
    Tensor x_in = act(a.x_in, {B, T, C});
    Tensor ln1 = act(a.ln1, {B, T, C}), qkv = act(a.qkv, {B, T, 3 * C});
    Tensor att = act(a.att, {B, H, T, T}), att_lse = act(a.att_lse, {B, H, T});
    Tensor atty = act(a.atty, {B, T, C});
    Tensor res1 = act(a.res1, {B, T, C}), ln2 = act(a.ln2, {B, T, C});
    Tensor fc = act(a.fc, {B, T, 4 * C});
    Tensor gelu = act(a.gelu, {B, T, 4 * C});
    Tensor x_out = act(l + 1 < blocks_.size() ? block_acts_[l + 1].x_in : x_final_, {B, T, C});

    layernorm_forward(ln1, act(a.ln1_mean, {N}), act(a.ln1_rstd, {N}), x_in, weight(p.ln_1_w),
                      bias(p.ln_1_b), eps);
    linear_forward(qkv, ln1, weight(p.c_attn_w), bias(p.c_attn_b));
    attention_forward(atty, att_lse, att, qkv, Tensor{}, shape_.n_head, /*causal=*/true);
    linear_forward(res1, atty, weight(p.attn_proj_w), bias(p.attn_proj_b));
    residual_forward(res1, res1, x_in);
    layernorm_forward(ln2, act(a.ln2_mean, {N}), act(a.ln2_rstd, {N}), res1, weight(p.ln_2_w),
                      bias(p.ln_2_b), eps);
    linear_forward(fc, ln2, weight(p.c_fc_w), bias(p.c_fc_b));
    gelu_forward(gelu, fc, GeluForm::kTanh);
    linear_forward(x_out, gelu, weight(p.mlp_proj_w), bias(p.mlp_proj_b));
    residual_forward(x_out, x_out, res1);
  }
  Tensor lnf = act(lnf_, {N, C});
  layernorm_forward(lnf, act(lnf_mean_, {N}), act(lnf_rstd_, {N}), act(x_final_, {N, C}),
                    weight(ln_f_w_), bias(ln_f_b_), eps);
  Tensor logits = act(logits_, {N, V});
  linear_forward(logits, lnf, weight(wte_), Tensor{});   // the head tied to wte
  if (targets.data() == nullptr) return 0.0;
  Tensor loss = act(loss_, {N});
  softmax_cross_entropy_forward(loss, act(lse_, {N}), logits, targets.view({N}), kIgnore);
  double sum = 0.0;
  if (dtype() == DType::kF64) {
    for (int64_t i = 0; i < N; ++i) sum += loss.f64()[i];
  } else {
    // On a GPU the (N) losses come down to the host (synchronises) and are summed there in
    // the CPU's order.
    const float* l = loss.f32();
    if (!loss.device().is_cpu()) {
      loss_host_.resize(size_t(N));
      copy_bytes(loss_host_.data(), Device::cpu(), l, loss.device(), size_t(N) * sizeof(float));
      l = loss_host_.data();
    }
    for (int64_t i = 0; i < N; ++i) sum += double(l[i]);
  }
  return sum;
}

void GptNet::backward(double scale, const std::function<void(int)>& ready) {
  LOOM_ASSERT(targets_.data() != nullptr, "GptNet::backward without a forward with targets");
  const int64_t B = B_, T = T_, C = shape_.d_model, H = shape_.n_head, V = shape_.vocab_size;
  const int64_t N = B * T;
  auto mark = [&](int index) {
    if (ready && index >= 0) ready(index);
  };
  Tensor d_res = scratch_.view(d_res_).slice(0, N * C).view({B, T, C});
  Tensor d_tmp = scratch_.view(d_tmp_).slice(0, N * C).view({B, T, C});
  Tensor d_ln = scratch_.view(d_ln_).slice(0, N * C).view({B, T, C});
  Tensor d_qkv = scratch_.view(d_qkv_).slice(0, N * 3 * C).view({B, T, 3 * C});
  const bool saved_p = !block_acts_.empty() && block_acts_[0].att >= 0;
  Tensor d_att = saved_p ? scratch_.view(d_att_).slice(0, B * H * T * T).view({B, H, T, T})
                         : scratch_.view(d_att_).slice(0, B * H * T).view({B, H, T});
  Tensor d_fc = scratch_.view(d_fc_).slice(0, N * 4 * C).view({B, T, 4 * C});

  // Head: the loss's gradient overwrites the logits; the tied head adds to wte's gradient
  // (complete only after the embedding's backward, at the very end).
  Tensor logits = act(logits_, {N, V});
  softmax_cross_entropy_backward(logits, logits, act(lse_, {N}), targets_.view({N}), kIgnore, scale);
  Tensor lnf = act(lnf_, {N, C});
  linear_backward(d_ln.view({N, C}), grad(wte_), Tensor{}, logits, lnf, weight(wte_));
  layernorm_backward(d_res.view({N, C}), grad(ln_f_w_), grad(ln_f_b_), d_ln.view({N, C}),
                     act(x_final_, {N, C}), weight(ln_f_w_), act(lnf_mean_, {N}),
                     act(lnf_rstd_, {N}));
  mark(ln_f_b_);
  mark(ln_f_w_);

  // d_res is the gradient of the residual stream, walked from the top block down.
  for (size_t li = blocks_.size(); li-- > 0;) {
    const GptBlockParams& p = blocks_[li];
    const BlockActs& a = block_acts_[li];
    Tensor x_in = act(a.x_in, {B, T, C});
    Tensor ln1 = act(a.ln1, {B, T, C}), qkv = act(a.qkv, {B, T, 3 * C});
    Tensor att = act(a.att, {B, H, T, T}), att_lse = act(a.att_lse, {B, H, T});
    Tensor atty = act(a.atty, {B, T, C});
    Tensor res1 = act(a.res1, {B, T, C}), ln2 = act(a.ln2, {B, T, C});
    Tensor fc = act(a.fc, {B, T, 4 * C}), gelu = act(a.gelu, {B, T, 4 * C});

    // MLP: x_out = res1 + c_proj(gelu(c_fc(ln_2(res1))))
    linear_backward(d_fc, grad(p.mlp_proj_w), grad(p.mlp_proj_b), d_res, gelu,
                    weight(p.mlp_proj_w));
    mark(p.mlp_proj_b);
    mark(p.mlp_proj_w);
    gelu_backward(d_fc, d_fc, fc, GeluForm::kTanh);
    linear_backward(d_ln, grad(p.c_fc_w), grad(p.c_fc_b), d_fc, ln2, weight(p.c_fc_w));
    mark(p.c_fc_b);
    mark(p.c_fc_w);
    layernorm_backward(d_tmp, grad(p.ln_2_w), grad(p.ln_2_b), d_ln, res1, weight(p.ln_2_w),
                       act(a.ln2_mean, {N}), act(a.ln2_rstd, {N}));
    mark(p.ln_2_b);
    mark(p.ln_2_w);
    residual_backward(d_res, d_tmp);   // d_res: now the gradient of res1

    // Attention: res1 = x_in + c_proj(attention(c_attn(ln_1(x_in))))
    linear_backward(d_ln, grad(p.attn_proj_w), grad(p.attn_proj_b), d_res, atty,
                    weight(p.attn_proj_w));
    mark(p.attn_proj_b);
    mark(p.attn_proj_w);
    attention_backward(d_qkv, d_att, d_ln, qkv, atty, att_lse, att, Tensor{}, shape_.n_head,
                       /*causal=*/true);
    linear_backward(d_ln, grad(p.c_attn_w), grad(p.c_attn_b), d_qkv, ln1, weight(p.c_attn_w));
    mark(p.c_attn_b);
    mark(p.c_attn_w);
    layernorm_backward(d_tmp, grad(p.ln_1_w), grad(p.ln_1_b), d_ln, x_in, weight(p.ln_1_w),
                       act(a.ln1_mean, {N}), act(a.ln1_rstd, {N}));
    mark(p.ln_1_b);
    mark(p.ln_1_w);
    residual_backward(d_res, d_tmp);   // d_res: now the gradient of x_in
  }
  embedding_backward(grad(wte_), grad(wpe_), Tensor{}, d_res, tokens_, Tensor{});
  mark(wpe_);
  mark(wte_);
}

Tensor GptNet::logits() const { return act(logits_, {B_, T_, shape_.vocab_size}); }

std::vector<uint8_t> GptNet::decay_mask(bool decay_embeddings) const {
  std::vector<uint8_t> mask(size_t(params_.size()), 0);
  for (const GptBlockParams& p : blocks_)
    for (int w : {p.c_attn_w, p.attn_proj_w, p.c_fc_w, p.mlp_proj_w}) mask[size_t(w)] = 1;
  if (decay_embeddings) mask[size_t(wte_)] = mask[size_t(wpe_)] = 1;
  return mask;
}

double GptNet::matmul_flops(int64_t B, int64_t T) const {
  const double C = shape_.d_model, V = shape_.vocab_size, N = double(B * T);
  const double per_block = 2.0 * N * (3 * C * C + C * C + 4 * C * C + 4 * C * C) +
                           2.0 * 2.0 * double(B) * double(T) * double(T) * C;   // q·kᵀ, att·v
  return shape_.n_layer * per_block + 2.0 * N * V * C;
}

}  // namespace loom
