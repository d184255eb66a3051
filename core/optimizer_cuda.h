#pragma once
// The CUDA side of core/optimizer.h: AdamW and LAMB updates, the global gradient norm with
// clipping, and element-wise division, on float32 device memory (core/cuda/optimizer.cu;
// core/optimizer_nocuda.cpp refuses them in a build without CUDA). Called only by
// core/optimizer.cpp, which picks them by the ParamStore's device and owns every buffer
// (allocated at setup): the functions here take raw device pointers and launch kernels.
//
// Note [Optimizer chunks on the GPU]
// The packed buffers are cut into chunks of kChunk elements that never straddle two
// parameters (each parameter's run starts a new chunk), as Lamb does on the CPU. One
// thread block updates one chunk, so a parameter's weight decay and LAMB's per-parameter
// norms are read from a small per-chunk table, and the padding between parameters is
// never touched. LAMB's Σ w² and Σ u² are kept per chunk in double and added chunk by
// chunk in order per parameter: the result does not depend on scheduling.
//
// Note [Same arithmetic as the CPU]
// The kernels spell every float operation with the _rn intrinsics (no fused multiply-add
// contraction) in the CPU loop's order, with the bias corrections computed on the host in
// double exactly as the CPU does: an AdamW step equals the CPU step bit for bit where both
// use correctly rounded sqrt and division (x86 SSE/AVX and CUDA's default do). LAMB's and
// the norm's double sums are added in another order than the CPU's, so they agree to a few
// units in the last place of a double.
//
// Stream: the calling thread's current loom stream of the device (Note [CUDA streams] in
// core/device.h), where the layer kernels run, so an update is ordered after backward and
// after GradSync's scaling without events.
#include <cstdint>

namespace loom::cuda {

inline constexpr int64_t kOptimizerChunk = 4096;   // elements per chunk (Lamb's kLambChunk)

// The chunk table of a ParamStore's layout, in device memory (all pointers on `device`).
struct OptimizerChunks {
  int device = 0;
  int64_t chunks = 0;                   // C
  int params = 0;                       // P
  const int32_t* chunk_param = nullptr; // (C) parameter of each chunk
  const int64_t* chunk_begin = nullptr; // (C) first element of each chunk
  const int64_t* chunk_end = nullptr;   // (C) one past its last element
  const int64_t* param_first_chunk = nullptr;   // (P + 1)
  const uint8_t* param_decays = nullptr;        // (P) 1: the parameter decays
};

// One Adam-family step's scalars, computed on the host as the CPU step computes them.
struct AdamScalars {
  float b1 = 0, b2 = 0;      // β1, β2
  float c1 = 0, c2 = 0;      // 1 − β1^t, 1 − β2^t
  float eps = 0;
  float rate = 0;            // AdamW: lr
  float decay = 0;           // AdamW: lr · weight_decay; LAMB: weight_decay
};

// AdamW (core/optimizer.cpp's AdamW::step): m, v, w updated in place. (n) each.
void adamw_step(const OptimizerChunks& t, const AdamScalars& s, float* w, const float* g, float* m,
                float* v);
// LAMB (Note [LAMB] in core/optimizer.h): the moments, per-chunk norms into chunk_sums
// (2C doubles of scratch), the trust ratios into trust (P doubles, device), then the
// update with rate = float(lr · trust). Every pointer on t.device.
void lamb_step(const OptimizerChunks& t, const AdamScalars& s, double lr, float* w, const float* g,
               float* m, float* v, double* chunk_sums, double* trust);

// Σ g² over n elements in double over kNormBlocks fixed blocks, added in order; the norm
// is √Σ. When max_norm > 0 and the norm exceeds it, g *= float(max_norm / (norm + 1e-6))
// (clip_grad_norm's rule). Returns the norm (one device-to-host copy: synchronises).
// `scratch` holds kNormBlocks + 1 doubles on `device`.
inline constexpr int kNormBlocks = 256;
double grad_norm_clip(int device, float* g, int64_t n, double max_norm, double* scratch);

// x[i] /= divisor, correctly rounded, for n elements on `device` (no synchronisation).
void divide(int device, float* x, int64_t n, float divisor);

}  // namespace loom::cuda
