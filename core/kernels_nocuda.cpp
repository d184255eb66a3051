// What CUDA tensors get from a kernel family that has no CUDA implementation in this
// build: a loom::Error naming the kernel and the device, before any memory is touched.
// A family's stubs disappear when core/CMakeLists.txt lists it in
// LOOM_CUDA_KERNEL_FAMILIES (it then defines LOOM_CUDA_HAS_<FAMILY>=1 for this file and
// compiles core/cuda/<family>.cu instead). Note [Adding a kernel family] in core/kernels.h.
#include <string>

#include "core/error.h"
#include "core/kernels_cuda.h"
#include "core/version.h"

namespace loom::cuda {
namespace {

[[maybe_unused]] [[noreturn]] void missing(const char* kernel, const char* family,
                                           Device device) {
  if (!kWithCuda)
    throw Error(std::string(kernel) + ": the tensors are on " + device.str() +
                " but this loom was built without CUDA (LOOM_CUDA=OFF or no nvcc at "
                "configure time); rebuild with -DLOOM_CUDA=ON or keep the model on the CPU");
  throw Error(std::string(kernel) + ": the tensors are on " + device.str() +
              " but the '" + family + "' kernels have no CUDA implementation yet (core/cuda/" +
              family + ".cu); keep the model on the CPU");
}

}  // namespace

#if !LOOM_CUDA_HAS_LINEAR
void linear_forward(Tensor out, Tensor, Tensor, Tensor) {
  missing("linear_forward", "linear", out.device());
}
void linear_backward(Tensor, Tensor dweight, Tensor, Tensor, Tensor, Tensor) {
  missing("linear_backward", "linear", dweight.device());
}
#endif

#if !LOOM_CUDA_HAS_SQUARED_ERROR
void squared_error_forward(Tensor loss, Tensor, Tensor) {
  missing("squared_error_forward", "squared_error", loss.device());
}
void squared_error_backward(Tensor dpred, Tensor, Tensor) {
  missing("squared_error_backward", "squared_error", dpred.device());
}
#endif

#if !LOOM_CUDA_HAS_EMBEDDING
void embedding_forward(Tensor out, Tensor, Tensor, Tensor, Tensor, Tensor) {
  missing("embedding_forward", "embedding", out.device());
}
void embedding_backward(Tensor dwte, Tensor, Tensor, Tensor, Tensor, Tensor) {
  missing("embedding_backward", "embedding", dwte.device());
}
#endif

#if !LOOM_CUDA_HAS_LAYERNORM
void layernorm_forward(Tensor out, Tensor, Tensor, Tensor, Tensor, Tensor, double) {
  missing("layernorm_forward", "layernorm", out.device());
}
void layernorm_backward(Tensor din, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor) {
  missing("layernorm_backward", "layernorm", din.device());
}
#endif

#if !LOOM_CUDA_HAS_GELU
void gelu_forward(Tensor out, Tensor, GeluForm) { missing("gelu_forward", "gelu", out.device()); }
void gelu_backward(Tensor din, Tensor, Tensor, GeluForm) {
  missing("gelu_backward", "gelu", din.device());
}
#endif

#if !LOOM_CUDA_HAS_RESIDUAL
void residual_forward(Tensor out, Tensor, Tensor) {
  missing("residual_forward", "residual", out.device());
}
void residual_backward(Tensor dacc, Tensor) {
  missing("residual_backward", "residual", dacc.device());
}
#endif

#if !LOOM_CUDA_HAS_ATTENTION
void attention_forward(Tensor out, Tensor, Tensor, Tensor, Tensor, int, bool) {
  missing("attention_forward", "attention", out.device());
}
void attention_backward(Tensor dqkv, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, Tensor, int,
                        bool) {
  missing("attention_backward", "attention", dqkv.device());
}
#endif

#if !LOOM_CUDA_HAS_SOFTMAX_CROSS_ENTROPY
void softmax_cross_entropy_forward(Tensor loss, Tensor, Tensor, Tensor, int) {
  missing("softmax_cross_entropy_forward", "softmax_cross_entropy", loss.device());
}
void softmax_cross_entropy_backward(Tensor dlogits, Tensor, Tensor, Tensor, int, double) {
  missing("softmax_cross_entropy_backward", "softmax_cross_entropy", dlogits.device());
}
#endif

#if !LOOM_CUDA_HAS_TANH
void tanh_forward(Tensor out, Tensor) { missing("tanh_forward", "tanh", out.device()); }
void tanh_backward(Tensor din, Tensor, Tensor) { missing("tanh_backward", "tanh", din.device()); }
#endif

#if !LOOM_CUDA_HAS_GATHER_ROWS
void gather_rows_forward(Tensor out, Tensor, Tensor) {
  missing("gather_rows_forward", "gather_rows", out.device());
}
void gather_rows_backward(Tensor din, Tensor, Tensor) {
  missing("gather_rows_backward", "gather_rows", din.device());
}
#endif

}  // namespace loom::cuda
