#pragma once
// BertNet: the original BERT as Hugging Face's BertForPreTraining computes it - word +
// position + token-type embeddings and a LayerNorm, n_layer POST-LayerNorm encoder blocks
// (self-attention over the unpadded keys, then a GELU (erf) MLP, each added to its input
// and normalised), the pooler (dense + tanh on the [CLS] vector) with the next-sentence
// head, and the masked-LM head (dense, GELU, LayerNorm, a decoder tied to the word
// embeddings plus its own bias) - with an explicit backward through core/kernels.h, like
// GptNet (models/gpt/gpt_net.h): parameters and gradients in one ParamStore, activations
// in one Arena, backward's scratch in another, nothing allocated in forward or backward.
//
// Parameter (and so checkpoint) names are the original BERT's, as DESIGN.md says:
// embeddings.*, encoder.layer.<i>.*, pooler.dense.* and the heads cls.* - Hugging Face's
// BertForPreTraining state_dict names less the "bert." its BertModel adds in front of the
// first three (the export puts it back: bert_hf_name in launch/kinds/bert_files.h). The
// decoder's weight and bias are tied, so they are not separate parameters; linear weights
// [out, in].
//
// Note [BERT activations]
// For B sequences of T tokens (N = B·T, C = hidden, I = intermediate, H = n_head):
//   emb (N,C) word + position + type; x_0 = LayerNorm(emb) + mean/rstd (N)
//   block l, from x_l: qkv (N,3C); att_lse (B,H,T); atty (N,C); att (B,H,T,T) only where
//     attention_saves_probabilities(device) (the CPU; on CUDA backward recomputes the
//     probabilities from att_lse, so activations grow with T, not T²);
//     res1 = x_l + attention.output.dense(atty); ln1 = LayerNorm(res1) + mean/rstd;
//     fc (N,I); gelu = gelu(fc) (N,I) (kept, as GptNet does);
//     res2 = ln1 + output.dense(gelu); x_{l+1} = LayerNorm(res2) + mean/rstd
//   pooler: cls (B,C) = x_L[:, 0]; pooled = tanh(dense(cls)); nsp (B,2) logits
//   MLM head on the B·P gathered rows only (Note [MLM positions]): rows (B·P,C) = x_L at
//     the positions; mfc = transform.dense(rows); mgelu; mln = LayerNorm(mgelu) + stats;
//     logits (B·P,V) = mln · word_embeddingsᵀ + cls.predictions.bias
// Backward overwrites both logits with their gradients.
//
// Note [MLM positions]
// BERT predicts ~15 % of the tokens; its 30522-word decoder is the largest matmul of a
// BERT-base step when run over all T positions. The head runs only on the rows the caller
// names (gather_rows), P per sequence. To get every position's logits (tests, export),
// pass P = T and positions 0..T−1.
//
// Note [HF's padding semantics]
// - Attention: a padded key (key_mask 0) gets no weight from any query; the queries AT
//   padded positions are computed like any other (they see the real keys), as HF does with
//   its additive mask. Rows of padded positions reach the loss only if a position names them.
// - nn.Embedding(padding_idx = pad_id): the lookup gives the pad row of word_embeddings no
//   gradient; the tied decoder still does. backward() saves that row of the gradient
//   before the embedding's backward and puts it back after.
#include <cstdint>
#include <functional>
#include <vector>

#include "core/arena.h"
#include "core/buffer.h"
#include "core/param_store.h"

namespace loom {

struct BertShape {
  int vocab_size = 30522;
  int hidden = 768;
  int n_layer = 12;
  int n_head = 12;
  int intermediate = 3072;
  int max_position = 512;
  int type_vocab = 2;
  double ln_eps = 1e-12;
  int32_t pad_id = 0;
};

// One micro-batch: i32 tensors on the net's device, B <= micro_batch, T <= seq_len,
// P <= max_predictions.
struct BertInputs {
  Tensor tokens;          // (B, T) ids in [0, vocab_size)
  Tensor segments;        // (B, T) token types in [0, type_vocab)
  Tensor key_mask;        // (B, T) 1 = real token, 0 = padding (fill_key_mask from lengths);
                          // empty: no padding
  Tensor mlm_positions;   // (B, P) positions in [0, T) the MLM head predicts, −1 = empty slot
  Tensor mlm_labels;      // (B, P) the original token at each position, −1 = no prediction
                          // (always for an empty slot); empty: no MLM loss (logits only)
  Tensor nsp_labels;      // (B) 0 = B follows A, 1 = random (HF's order), −1 = ignored;
                          // empty: no NSP loss (logits only)
};

// Sums over the micro-batch (the caller divides by the counts, across ranks if it likes).
struct BertLosses {
  double mlm_loss = 0.0;     // Σ cross-entropy over the counted MLM slots
  int64_t mlm_count = 0;     // slots with a label != −1
  int64_t mlm_correct = 0;   // of those, argmax of the logits == label
  double nsp_loss = 0.0;
  int64_t nsp_count = 0;
  int64_t nsp_correct = 0;
};

// key_mask[b, t] = t < lengths[b] (host tensors: key_mask (B, T), lengths (B), both i32).
void fill_key_mask(Tensor key_mask, Tensor lengths);

// Indices of one encoder block's parameters in the ParamStore.
struct BertBlockParams {
  int query_w, key_w, value_w, query_b, key_b, value_b;   // declared packed, in this order
  int attn_out_w, attn_out_b, attn_ln_w, attn_ln_b;
  int inter_w, inter_b, out_w, out_b, out_ln_w, out_ln_b;
};

class BertNet {
 public:
  // Arena sizes: up to `micro_batch` sequences of up to `seq_len` (<= max_position)
  // tokens with up to `max_predictions` MLM slots each. dtype f32 trains; f64 (CPU)
  // checks gradients against double-precision references.
  BertNet(const BertShape& shape, int64_t micro_batch, int64_t seq_len, int64_t max_predictions,
          Device device = Device::cpu(), DType dtype = DType::kF32);

  // The parameters a BertNet of `shape` declares (names, shapes, order; parameter_count())
  // without allocating anything: not finalized. BERT-large's 335 M parameters can be
  // counted and named without the 2.7 GB of values and gradients.
  static ParamStore parameter_layout(const BertShape& shape);

  const BertShape& shape() const { return shape_; }
  ParamStore& params() { return params_; }
  const ParamStore& params() const { return params_; }
  int64_t micro_batch() const { return micro_batch_; }
  int64_t seq_len() const { return seq_len_; }
  int64_t max_predictions() const { return max_predictions_; }
  DType dtype() const { return params_.dtype(); }

  // HF's _init_weights from `seed` (the same on every rank): Linear and Embedding weights
  // N(0, 0.02), the word embeddings' pad_id row zero, biases 0 (cls.predictions.bias too),
  // LayerNorm weights 1. Float32 draws whatever dtype() is.
  void init(uint64_t seed);

  // Forward of one micro-batch; the sums and counts of both losses (zero for a head whose
  // labels are empty). The logits stay available until the next call; backward() reads
  // the inputs again, so their memory must stay valid until then.
  BertLosses forward(const BertInputs& in);
  // Backward of the last forward: ACCUMULATES the gradient of
  // mlm_scale · Σ MLM loss + nsp_scale · Σ NSP loss into params().grads(). `ready`, when
  // given, is called with each parameter's index as soon as backward has written its last
  // contribution (reverse declaration order; word_embeddings last) - GradSync::mark_ready.
  // HF's BertForPreTraining loss is mean MLM + mean NSP: scales 1/mlm_count, 1/nsp_count
  // (0 for a head without counted labels).
  void backward(double mlm_scale, double nsp_scale, const std::function<void(int)>& ready = {});

  // Whether forward counts the labelled rows and their argmax hits (BertLosses' counts and
  // *_correct; on by default; off they stay 0). Training needs only the loss sums; on a
  // GPU the count reads the (B·P, V) logits back to the host, so the Bert trainer turns it
  // off for its steps and on for evaluations.
  void set_count_correct(bool on) { count_correct_ = on; }

  Tensor mlm_logits() const;   // (B·P, V) of the last forward
  Tensor nsp_logits() const;   // (B, 2)

  // Whether AdamW decays each parameter (declaration order): linear weights yes; biases
  // and LayerNorm weights no; the three embedding tables only when `decay_embeddings`.
  std::vector<uint8_t> decay_mask(bool decay_embeddings) const;
  // Multiply-add FLOPs x2 of one forward over B sequences of T tokens with P MLM slots
  // each in matmuls: the encoder's linear layers, attention's two products (full T x T),
  // the pooler and NSP head, and the MLM head on B·P rows.
  double matmul_flops(int64_t B, int64_t T, int64_t P) const;

 private:
  struct BlockActs {
    int qkv, att, att_lse, atty, res1, ln1, ln1_mean, ln1_rstd, fc, gelu, res2, ln2, ln2_mean,
        ln2_rstd;   // att −1 where not kept
  };
  // The prefix of arena tensor `index` as `shape`; empty for index −1.
  struct LayoutOnly {};
  BertNet(const BertShape& shape, LayoutOnly);   // declares the parameters only
  Tensor act(int index, Shape shape) const;
  Tensor sc(int index, Shape shape) const;    // the same in the scratch arena
  Tensor weight(int index) const { return params_.value(index); }
  Tensor grad(int index) const { return params_.grad(index); }
  Tensor qkv_weight(const BertBlockParams& p) const;   // (3C, C) packed query, key, value
  Tensor qkv_bias(const BertBlockParams& p) const;     // (3C)
  Tensor qkv_weight_grad(const BertBlockParams& p) const;
  Tensor qkv_bias_grad(const BertBlockParams& p) const;
  Tensor hidden_out(int64_t B, int64_t T) const;   // (B, T, C) the encoder's output
  Tensor cls_positions_tensor(int64_t B) const;      // (B, 1) i32 zeros
  void declare_params();
  void declare_acts();
  void forward_heads(const BertInputs& in, BertLosses& out);
  void backward_heads(double mlm_scale, double nsp_scale, const std::function<void(int)>& mark);
  void backward_embeddings(const std::function<void(int)>& mark);

  BertShape shape_;
  int64_t micro_batch_, seq_len_, max_predictions_;
  ParamStore params_;
  int word_, position_, type_, emb_ln_w_, emb_ln_b_;
  std::vector<BertBlockParams> blocks_;
  int pool_w_, pool_b_, mlm_bias_, mlm_dense_w_, mlm_dense_b_, mlm_ln_w_, mlm_ln_b_;
  int nsp_w_, nsp_b_;

  Arena acts_;
  int emb_, x0_, x0_mean_, x0_rstd_;
  std::vector<BlockActs> block_acts_;
  int cls_, pooled_, nsp_logits_, nsp_loss_, nsp_lse_;
  int rows_, mfc_, mgelu_, mln_, mln_mean_, mln_rstd_, logits_, mlm_loss_, mlm_lse_;
  Arena scratch_;
  int d_res_, d_tmp_, d_ln_, d_qkv_, d_att_, d_fc_, d_cls_, d_pool_, d_rows_, d_mrows_, pad_row_;
  Buffer cls_positions_;   // (micro_batch, 1) i32 zeros: [CLS] is position 0

  BertInputs in_;   // the last forward's inputs
  bool count_correct_ = true;
  // On a GPU: host copies of what forward sums and counts (losses, logits, labels).
  std::vector<uint8_t> host_loss_, host_logits_, host_labels_, host_positions_;
  int64_t B_ = 0, T_ = 0, P_ = 0;
};

}  // namespace loom
