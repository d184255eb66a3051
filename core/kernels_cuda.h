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
#include "core/tensor.h"

namespace loom::cuda {

void linear_forward(Tensor out, Tensor in, Tensor weight, Tensor bias);
void linear_backward(Tensor din, Tensor dweight, Tensor dbias, Tensor dout, Tensor in,
                     Tensor weight);
void squared_error_forward(Tensor loss, Tensor pred, Tensor target);
void squared_error_backward(Tensor dpred, Tensor pred, Tensor target);

}  // namespace loom::cuda
