#pragma once
// Layer kernels: free functions over Tensor views (DESIGN.md "Transformers", STYLE.md
// rule 3). Model code calls these and never names a device: one dispatch point per family
// (core/kernels.cpp) checks the arguments once, reads the tensors' device and calls the
// CPU reference (core/kernels_cpu.cpp, OpenMP + OpenBLAS) or the CUDA implementation
// (core/cuda/<family>.cu, declared in core/kernels_cuda.h).
//
// Note [Kernel contract]
// - Argument order: outputs, then inputs, then weights (shapes come with the tensors).
// - Every tensor of one call lives on one device and has one dtype: f32 (training) or
//   f64 (CPU only; finite-difference gradient checks run in double). Anything else - a
//   wrong shape, mixed devices or dtypes - is a loom::Error naming the kernel, the
//   argument and what it got.
// - Leading dimensions are flattened: `in (..., I)` is read as (N, I) with N the product
//   of the leading dimensions, so (B, T, C) activations go in as they are.
// - Forward writes its outputs. Backward WRITES activation gradients (din, dpred: no need
//   to zero them first; residual sums are explicit) and ACCUMULATES (+=) into weight
//   gradients (dweight, dbias), which live in the ParamStore's gradient buffer and are
//   zeroed once per step by whoever owns the step.
// - An optional argument is an empty Tensor (Tensor{}): no bias, or "this gradient is
//   not needed" (the first layer's din).
// - Kernels allocate nothing; scratch, when a family needs it, is an argument.
//
// Note [Adding a kernel family]
// A family is a forward/backward pair (embedding, layernorm, attention, gelu,
// softmax_cross_entropy, ...). To add one:
//   1. Declare it here in this file's style: shapes in the comment, outputs first.
//   2. Add its dispatch to core/kernels.cpp: `bool cuda = check_args(...)` (devices,
//      dtypes, missing arguments), its shape rules (bad_shape() builds the message only
//      on failure: a kernel call allocates nothing), then
//      `if (cuda) return cuda::x(...); cpu::x(...);` - ten lines, no #ifdef.
//   3. Write the CPU reference in core/kernels_cpu.cpp (or kernels_cpu_<family>.cpp once
//      that file passes ~500 lines): a float/double pair through one function template
//      local to the .cpp, GEMMs through the gemm() overloads there.
//   4. Declare it in core/kernels_cuda.h and add its stub to core/kernels_nocuda.cpp
//      inside `#if !LOOM_CUDA_HAS_<FAMILY>` (what CUDA tensors get until the kernel lands).
//   5. Test it in tests/core/test_kernels_<family>.cpp, listed in tests/core/kernels.cmake
//      (test_kernels_linear.cpp is the pattern): forward against a naive double loop on
//      odd sizes, backward against central finite differences in double
//      (tests/support/finite_diff.h), accumulation of weight gradients, a CUDA tensor
//      refused.
// Later, the CUDA kernel: write core/cuda/<family>.cu defining the core/kernels_cuda.h
// functions and add <family> to LOOM_CUDA_KERNEL_FAMILIES in core/CMakeLists.txt; that
// compiles the .cu (CUDA builds only) and drops the family's stub. Model code, the
// dispatch and the other families stay untouched. Its test compares it with the CPU
// reference on the same inputs (tests/gpu/, skipped without a GPU).
#include <cstdint>

#include "core/tensor.h"

namespace loom {

// The threads of the CPU kernels, OpenMP's and BLAS's alike (run.threads; the Session sets
// it at start-up). Without it OpenBLAS would use every core of the machine in each rank,
// whatever run.threads says (Note [One thread pool] in core/kernels_cpu.cpp).
void set_kernel_threads(int threads);

// TF32 for the fp32 GEMMs of the CUDA kernels (linear, attention's backward): process-wide,
// off by default (exact fp32). On, cuBLAS may round GEMM inputs to TF32's 10-bit mantissa
// (~1e-3 relative per product, fp32 accumulation) for ~8x the fp32 rate on Hopper. CPU
// kernels ignore it. Note [CUDA linear] in core/cuda/linear.cu.
void set_cuda_tf32(bool enabled);
bool cuda_tf32();

// Note [CUDA matmul precision]
// What the CUDA GEMMs (linear, attention) compute in: process-wide, kFp32 by default.
//   kFp32  exact fp32 products and sums (CUBLAS_COMPUTE_32F)
//   kTf32  TF32 tensor cores: inputs rounded to a 10-bit mantissa, fp32 sums (set_cuda_tf32)
//   kBf16  bf16 tensor cores: cuBLAS makes bf16 copies of the fp32 operands (8-bit
//          mantissa, ~4e-3 relative per input) and sums in fp32
//          (CUBLAS_COMPUTE_32F_FAST_16BF); activations, gradients, master weights and
//          optimizer state stay fp32 in memory. This is train.precision = "bf16": mixed
//          precision at the matmuls (the FLOPs), without bf16 tensors anywhere else.
// Everything but the GEMMs (LayerNorm, softmax, GELU, the optimizer) is fp32 in every
// mode. CPU kernels ignore the setting.
enum class CudaMatmul : uint8_t { kFp32, kTf32, kBf16 };
void set_cuda_matmul(CudaMatmul precision);
CudaMatmul cuda_matmul();

// ---- linear: out = in · weightᵀ + bias -------------------------------------------------
// Linear weights are stored (out_features, in_features) as DESIGN.md fixes.
//   out    (N, O)   written
//   in     (N, I)
//   weight (O, I)
//   bias   (O) or empty
void linear_forward(Tensor out, Tensor in, Tensor weight, Tensor bias);

//   din     (N, I) or empty   written:      din = dout · weight
//   dweight (O, I)            accumulated:  dweight += doutᵀ · in
//   dbias   (O) or empty      accumulated:  dbias[o] += Σ_n dout[n, o]
//   dout    (N, O)
//   in      (N, I)            the forward's input
//   weight  (O, I)
void linear_backward(Tensor din, Tensor dweight, Tensor dbias, Tensor dout, Tensor in,
                     Tensor weight);

// ---- squared error: loss[n] = ½ Σ_k (pred[n, k] − target[n, k])² ----------------------
// The regression loss. Its gradient is that of Σ_n loss[n] (a sum, not a mean: the
// caller scales, e.g. GradSync's divisor, so sums over ranks stay sums).
//   loss   (N)      written
//   pred   (N, K)
//   target (N, K)
void squared_error_forward(Tensor loss, Tensor pred, Tensor target);

//   dpred  (N, K)   written:  dpred = pred − target
//   pred   (N, K)
//   target (N, K)
void squared_error_backward(Tensor dpred, Tensor pred, Tensor target);

// ---- transformer families (GPT, BERT) ---------------------------------------------------
// Integer inputs (token ids, segment ids, targets, key masks) are i32 tensors on the same
// device as the floating ones; the dtype rule above is about the floating tensors.

// ---- embedding: out[b, t] = wte[tokens[b, t]] + wpe[t] (+ wse[segments[b, t]]) ----------
// GPT: token + learned position; BERT adds the segment (token type) embedding.
//   out      (B, T, C)  written
//   tokens   (B, T) i32, each in [0, V): an id outside is a loom::Error naming it
//   segments (B, T) i32 in [0, S), or empty
//   wte (V, C), wpe (P, C) with P >= T, wse (S, C) or empty
void embedding_forward(Tensor out, Tensor tokens, Tensor segments, Tensor wte, Tensor wpe,
                       Tensor wse);
//   dwte, dwpe, dwse   accumulated (dwse empty when there is no segment table)
//   dout (B, T, C)
void embedding_backward(Tensor dwte, Tensor dwpe, Tensor dwse, Tensor dout, Tensor tokens,
                        Tensor segments);

// ---- layernorm: out = (in − mean) · rstd · weight + bias, over the last dimension --------
//   out  (N, C) written; mean, rstd (N) written (saved for backward)
//   in   (N, C); weight (C); bias (C) or empty
void layernorm_forward(Tensor out, Tensor mean, Tensor rstd, Tensor in, Tensor weight,
                       Tensor bias, double eps);
//   din (N, C) written; dweight (C), dbias (C) or empty accumulated
void layernorm_backward(Tensor din, Tensor dweight, Tensor dbias, Tensor dout, Tensor in,
                        Tensor weight, Tensor mean, Tensor rstd);

// ---- gelu: out = gelu(in), elementwise --------------------------------------------------
// kTanh: GPT-2's 0.5 x (1 + tanh(√(2/π) (x + 0.044715 x³))); kErf: BERT's 0.5 x (1 + erf(x/√2)).
enum class GeluForm : uint8_t { kTanh, kErf };
void gelu_forward(Tensor out, Tensor in, GeluForm form);
//   din written (may be the same memory as dout)
void gelu_backward(Tensor din, Tensor dout, Tensor in, GeluForm form);

// ---- residual add ----------------------------------------------------------------------
// out = a + b (out may be the memory of a or b). Its backward is an accumulation:
// residual_backward(dacc, dout): dacc += dout, both the same shape.
void residual_forward(Tensor out, Tensor a, Tensor b);
void residual_backward(Tensor dacc, Tensor dout);

// ---- multi-head self-attention ---------------------------------------------------------
// qkv holds q, k and v side by side as GPT-2's c_attn writes them: qkv[b, t] =
// [q (C) | k (C) | v (C)], head h owning columns [h·D, (h+1)·D) of each, D = C / n_head.
// For each (b, h): P = softmax(S), S = q kᵀ / √D + mask, out[b, :, h·D:(h+1)·D] = P v.
// Masks: `causal` (query t sees keys s <= t) and/or key_mask (B, T) i32 (0 = padding: no
// query sees that key; a query whose keys are all masked gets zeros, not NaN).
//
// Note [Saved probabilities or lse]
// Backward needs P. Two ways to have it, chosen by the caller per call:
// - att given: forward writes P (B, H, T, T), backward reads it (T² memory per head);
// - att empty: forward keeps only lse (B, H, T), the row log-sum-exp of S, and backward
//   recomputes P = exp(S − lse) from q, k and lse (FlashAttention-2's backward): memory
//   linear in T, the QKᵀ work done again.
// lse is written in both cases. A row whose keys are all masked has lse = +inf: then
// exp(S − lse) = 0 for every key, so the recomputed P, out and every gradient of the row
// are zeros with no special case. attention_saves_probabilities(device) is the policy
// model code follows, so that it never names a device.
//   out      (B, T, C)      written
//   lse      (B, H, T)      written: logsumexp_s S[t, s] over the unmasked keys, or +inf
//   att      (B, H, T, T)   written when given (masked entries 0), or empty
//   qkv      (B, T, 3C)
//   key_mask (B, T) i32, or empty
void attention_forward(Tensor out, Tensor lse, Tensor att, Tensor qkv, Tensor key_mask,
                       int n_head, bool causal);
//   dqkv     (B, T, 3C)     written
//   scratch  (B, H, T, T) with att, (B, H, T) without it (then it holds rowsum(dO ⊙ O));
//            its contents on return are unspecified
//   dout     (B, T, C)
//   qkv, key_mask, n_head, causal as the forward got them; out, lse, att (or empty) as it
//   wrote them
void attention_backward(Tensor dqkv, Tensor scratch, Tensor dout, Tensor qkv, Tensor out,
                        Tensor lse, Tensor att, Tensor key_mask, int n_head, bool causal);
// Whether a model on `device` should pass att (B, H, T, T), the probabilities, to the
// attention kernels (Note [Saved probabilities or lse]), or an empty att and a (B, H, T)
// scratch. True on the CPU: its backward runs on GEMMs over the saved P, the fastest CPU
// path, and CPU sequences are short. False on CUDA: the fused kernels recompute P tile by
// tile, and saving it would cost B·H·T² floats per layer (9.7 GB per GPT-2 124M step at
// T = 1024, B = 16).
bool attention_saves_probabilities(Device device);

// ---- fused softmax cross-entropy -------------------------------------------------------
// loss[n] = logsumexp(logits[n]) − logits[n, targets[n]]; rows whose target is
// ignore_index have loss 0 and zero gradient. A target outside [0, V) that is not
// ignore_index is a loom::Error naming the row.
//   loss (N) written; lse (N) written (logsumexp, saved for backward)
//   logits (N, V); targets (N) i32
void softmax_cross_entropy_forward(Tensor loss, Tensor lse, Tensor logits, Tensor targets,
                                   int ignore_index);
// The gradient of scale · Σ_n loss[n] (scale = 1 / tokens counted for a mean):
//   dlogits (N, V) written: (softmax(logits[n]) − onehot(targets[n])) · scale;
//   may be the same memory as logits (the logits are then overwritten).
void softmax_cross_entropy_backward(Tensor dlogits, Tensor logits, Tensor lse, Tensor targets,
                                    int ignore_index, double scale);

// ---- tanh: out = tanh(in), elementwise ------------------------------------------------
// BERT's pooler (dense + tanh on the [CLS] vector). Backward reads the forward's OUTPUT
// (tanh' = 1 − tanh²), so the input need not be kept: out may be in's memory.
//   out written (may be in's memory); in any shape
void tanh_forward(Tensor out, Tensor in);
//   din written (may be dout's memory): din = dout · (1 − out²)
//   dout, out the forward's output: all three the same shape
void tanh_backward(Tensor din, Tensor dout, Tensor out);

// ---- gather_rows: out[b, p] = in[b, positions[b, p]] ------------------------------------
// Picks P rows of each sequence so that a head runs on B·P rows instead of B·T (BERT: the
// masked positions for the MLM head, [CLS] at position 0 for the pooler).
//   out       (B, P, C)  written; the row of a position −1 (an empty slot) is zeros
//   in        (B, T, C)
//   positions (B, P) i32, each in [0, T) or −1: anything else is a loom::Error naming
//             (b, p), raised before anything is written
void gather_rows_forward(Tensor out, Tensor in, Tensor positions);
// The scatter-add: din[b, t] = Σ over p with positions[b, p] = t of dout[b, p]; rows no
// position names are zeros (a position named twice sums both rows, in p order).
//   din  (B, T, C)  written
//   dout (B, P, C)
void gather_rows_backward(Tensor din, Tensor dout, Tensor positions);

}  // namespace loom
