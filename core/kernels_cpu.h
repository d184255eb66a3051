#pragma once
// The CPU reference implementations behind core/kernels.h (core/kernels_cpu.cpp).
// Called only by the dispatch in core/kernels.cpp, which has already checked devices,
// dtypes (f32 or f64) and shapes; same signatures and contract as core/kernels.h.
#include "core/tensor.h"

namespace loom::cpu {

void linear_forward(Tensor out, Tensor in, Tensor weight, Tensor bias);
void linear_backward(Tensor din, Tensor dweight, Tensor dbias, Tensor dout, Tensor in,
                     Tensor weight);
void squared_error_forward(Tensor loss, Tensor pred, Tensor target);
void squared_error_backward(Tensor dpred, Tensor pred, Tensor target);

}  // namespace loom::cpu
