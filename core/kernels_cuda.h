#pragma once
// The CUDA implementations behind core/kernels.h: one core/cuda/<family>.cu per family,
// compiled only in a CUDA build and only for the families listed in
// LOOM_CUDA_KERNEL_FAMILIES (core/CMakeLists.txt). A family without its .cu - or every
// family in a build without CUDA - is defined by core/kernels_nocuda.cpp as a loom::Error
// naming the kernel and the device (Note [Adding a kernel family] in core/kernels.h).
//
// Called only by the dispatch in core/kernels.cpp, which has already checked that every
// tensor is on the same CUDA device, has one floating dtype and the right shape. An
// implementation that supports only f32 says so with a loom::Error for f64. Plain C++
// signatures: no CUDA header is needed to call them.
#include "core/kernels.h"   // GeluForm
#include "core/tensor.h"

namespace loom::cuda {

void linear_forward(Tensor out, Tensor in, Tensor weight, Tensor bias);
void linear_backward(Tensor din, Tensor dweight, Tensor dbias, Tensor dout, Tensor in,
                     Tensor weight);
void squared_error_forward(Tensor loss, Tensor pred, Tensor target);
void squared_error_backward(Tensor dpred, Tensor pred, Tensor target);

// Transformer families (core/cuda/<family>.cu).
void embedding_forward(Tensor out, Tensor tokens, Tensor segments, Tensor wte, Tensor wpe,
                       Tensor wse);
void embedding_backward(Tensor dwte, Tensor dwpe, Tensor dwse, Tensor dout, Tensor tokens,
                        Tensor segments);
void layernorm_forward(Tensor out, Tensor mean, Tensor rstd, Tensor in, Tensor weight,
                       Tensor bias, double eps);
void layernorm_backward(Tensor din, Tensor dweight, Tensor dbias, Tensor dout, Tensor in,
                        Tensor weight, Tensor mean, Tensor rstd);
void gelu_forward(Tensor out, Tensor in, GeluForm form);
void gelu_backward(Tensor din, Tensor dout, Tensor in, GeluForm form);
void residual_forward(Tensor out, Tensor a, Tensor b);
void residual_backward(Tensor dacc, Tensor dout);
void attention_forward(Tensor out, Tensor lse, Tensor att, Tensor qkv, Tensor key_mask,
                       int n_head, bool causal);
void attention_backward(Tensor dqkv, Tensor scratch, Tensor dout, Tensor qkv, Tensor out,
                        Tensor lse, Tensor att, Tensor key_mask, int n_head, bool causal);
void softmax_cross_entropy_forward(Tensor loss, Tensor lse, Tensor logits, Tensor targets,
                                   int ignore_index);
void softmax_cross_entropy_backward(Tensor dlogits, Tensor logits, Tensor lse, Tensor targets,
                                    int ignore_index, double scale);

void tanh_forward(Tensor out, Tensor in);
void tanh_backward(Tensor din, Tensor dout, Tensor out);
void gather_rows_forward(Tensor out, Tensor in, Tensor positions);
void gather_rows_backward(Tensor din, Tensor dout, Tensor positions);

}  // namespace loom::cuda
