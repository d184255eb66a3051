// core/optimizer_cuda.h in a build without CUDA: a ParamStore cannot live on a GPU here
// (Buffer refuses CUDA memory first), so these are reached only through misuse; each says
// what this build lacks.
#include <string>

#include "core/error.h"
#include "core/optimizer_cuda.h"

namespace loom::cuda {
namespace {
[[noreturn]] void no_cuda(const char* what) {
  throw Error(std::string(what) + ": this loom was built without CUDA (LOOM_CUDA=OFF or no nvcc "
              "at configure time); rebuild with -DLOOM_CUDA=ON or keep the parameters on the CPU");
}
}  // namespace

void adamw_step(const OptimizerChunks&, const AdamScalars&, float*, const float*, float*, float*) {
  no_cuda("AdamW on a GPU");
}
void lamb_step(const OptimizerChunks&, const AdamScalars&, double, float*, const float*, float*,
               float*, double*, double*) {
  no_cuda("LAMB on a GPU");
}
double grad_norm_clip(int, float*, int64_t, double, double*) { no_cuda("the gradient norm on a GPU"); }
void divide(int, float*, int64_t, float) { no_cuda("dividing on a GPU"); }

}  // namespace loom::cuda
