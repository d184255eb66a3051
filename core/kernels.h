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
#include "core/tensor.h"

namespace loom {

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

}  // namespace loom
