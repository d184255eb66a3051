#pragma once
// GptNet: GPT-2's network - learned token and position embeddings, n_layer pre-LayerNorm
// blocks (attention, then a 4x MLP with tanh GELU, each added to the residual stream),
// a final LayerNorm and an LM head tied to the token embedding - with an explicit
// backward through core/kernels.h. No general autograd: forward saves what backward reads
// in one Arena of activations, backward walks the blocks in reverse.
//
// Memory: parameters and gradients are one ParamStore (DESIGN.md names, linear weights
// [out, in]); activations for `micro_batch` sequences of `seq_len` tokens are one Arena,
// backward's scratch another. Both are sized at construction; forward and backward allocate
// nothing. A call may run fewer sequences or tokens than the arena holds (views of the
// prefix), which is how generation runs a growing context.
//
// Note [GPT activations]
// Per block l, for a micro-batch of B sequences of T tokens (C = d_model, H = n_head):
//   x_l (B,T,C) the residual stream entering the block (x_0 = embeddings)
//   ln1 (B,T,C) + mean/rstd (B·T); qkv (B,T,3C); att_lse (B,H,T); atty (B,T,C);
//   att (B,H,T,T) only where attention_saves_probabilities(device) (the CPU): on CUDA the
//   backward recomputes the probabilities from att_lse, so activations grow with T, not T²
//   res1 = x_l + c_proj(atty) (B,T,C); ln2 (B,T,C) + mean/rstd; fc (B,T,4C);
//   gelu = gelu(fc) (B,T,4C); x_{l+1} = res1 + mlp.c_proj(gelu)
// gelu(fc) is kept (recomputing it in backward saved B·T·4C floats per block but cost ~4 %
// of a gpt-tiny step). The head keeps ln_f's output and the logits (B·T, V), which
// backward overwrites with their gradient.
#include <cstdint>
#include <functional>
#include <vector>

#include "core/arena.h"
#include "core/param_store.h"

namespace loom {

struct GptShape {
  int n_layer = 4;
  int n_head = 4;
  int d_model = 256;
  int n_positions = 256;   // learned positions: the longest context
  int vocab_size = 8192;
  bool bias = true;        // biases in linear layers and LayerNorms (GPT-2: true)
  double ln_eps = 1e-5;
};

// Indices of one block's parameters in the ParamStore (-1: no such bias).
struct GptBlockParams {
  int ln_1_w, ln_1_b, c_attn_w, c_attn_b, attn_proj_w, attn_proj_b;
  int ln_2_w, ln_2_b, c_fc_w, c_fc_b, mlp_proj_w, mlp_proj_b;
};

class GptNet {
 public:
  // Arena sizes: up to `micro_batch` sequences of up to `seq_len` (<= n_positions) tokens.
  // dtype f32 trains; f64 (CPU) checks gradients against double-precision references.
  GptNet(const GptShape& shape, int64_t micro_batch, int64_t seq_len, Device device = Device::cpu(),
         DType dtype = DType::kF32);

  const GptShape& shape() const { return shape_; }
  ParamStore& params() { return params_; }
  const ParamStore& params() const { return params_; }
  int64_t micro_batch() const { return micro_batch_; }
  int64_t seq_len() const { return seq_len_; }

  // GPT-2's initialisation from `seed` (the same on every rank): weights N(0, 0.02), the
  // residual projections (attn.c_proj, mlp.c_proj) N(0, 0.02 / √(2 n_layer)), biases 0,
  // LayerNorm weights 1. The values are float32 draws whatever dtype() is, and the same
  // whatever the device (drawn on the host, then copied).
  void init(uint64_t seed);

  // Forward of tokens (B, T) i32 on the net's device, B <= micro_batch, T <= seq_len. With targets (B, T) i32
  // (-1 = ignored) also the loss; returns Σ of the per-token losses of the non-ignored
  // targets (0 without targets). The logits stay available until the next call.
  double forward(Tensor tokens, Tensor targets);
  // Backward of the last forward (which had targets): ACCUMULATES the gradient of
  // scale · Σ loss into params().grads(). `ready`, when given, is called with each
  // parameter's index as soon as backward has written its last contribution (reverse
  // order: ln_f, the last block, ..., wpe, wte) - GradSync::mark_ready.
  void backward(double scale, const std::function<void(int)>& ready = {});

  // (B, T, V) logits of the last forward.
  Tensor logits() const;

  // Whether AdamW decays each parameter (declaration order): linear weights yes; biases,
  // LayerNorm weights no; embeddings (wte, wpe) only when `decay_embeddings`.
  std::vector<uint8_t> decay_mask(bool decay_embeddings) const;
  // Multiply-add FLOPs x2 of one forward over B sequences of T tokens in matmuls: the
  // linear layers, the tied head and attention's two products (full T x T).
  double matmul_flops(int64_t B, int64_t T) const;
  DType dtype() const { return params_.dtype(); }

 private:
  struct BlockActs {
    int x_in, ln1, ln1_mean, ln1_rstd, qkv, att, att_lse, atty, res1, ln2, ln2_mean, ln2_rstd, fc,
        gelu;   // att −1 where not kept
  };
  // The prefix of arena tensor `index` as `shape`; empty for index −1.
  Tensor act(int index, Shape shape) const;
  Tensor weight(int index) const { return params_.value(index); }
  Tensor bias(int index) const { return index < 0 ? Tensor{} : params_.value(index); }
  Tensor grad(int index) const { return index < 0 ? Tensor{} : params_.grad(index); }

  GptShape shape_;
  int64_t micro_batch_;
  int64_t seq_len_;
  ParamStore params_;
  int wte_, wpe_, ln_f_w_, ln_f_b_;
  std::vector<GptBlockParams> blocks_;

  Arena acts_;
  std::vector<BlockActs> block_acts_;
  int x_final_, lnf_, lnf_mean_, lnf_rstd_, logits_, loss_, lse_;
  Arena scratch_;
  int d_res_, d_tmp_, d_ln_, d_qkv_, d_att_, d_fc_;

  Tensor tokens_, targets_;   // the last forward's inputs
  std::vector<float> loss_host_;   // a GPU forward's per-token losses, read back to sum them
  int64_t B_ = 0, T_ = 0;
};

}  // namespace loom
