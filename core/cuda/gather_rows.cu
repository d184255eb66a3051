// CUDA gather_rows (core/kernels.h), f32: out[b, p] = in[b, positions[b, p]] (zeros for an
// empty slot, −1) and its scatter-add backward. Positions are range-checked on the GPU
// before anything is written (Note [Range checks on the GPU]).
//
// Backward: din is zeroed (cudaMemsetAsync: no allocation), then thread (b, c) walks
// p = 0..P−1 in order and adds dout[b, p, c] into din[b, positions[b, p], c]. Only that
// thread touches column c of sequence b, so there are no atomics and each din element is
// summed in p order - the CPU reference's order, hence bitwise equal to it.
#include "core/cuda/kernel_support.h"
#include "core/kernels_cuda.h"

#include <string>

namespace loom::cuda {
namespace {
using namespace detail;

constexpr int kThreads = 256;
constexpr int32_t kEmptySlot = -1;

__global__ void gather(float* out, const float* in, const int32_t* positions, int64_t B,
                       int64_t P, int64_t T, int64_t C) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < B * P * C;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t n = i / C, c = i % C;   // n = b·P + p
    const int32_t t = positions[n];
    out[i] = t == kEmptySlot ? 0.0f : in[((n / P) * T + t) * C + c];
  }
}

__global__ void scatter_add(float* din, const float* dout, const int32_t* positions, int64_t B,
                            int64_t P, int64_t T, int64_t C) {
  for (int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x; i < B * C;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t b = i / C, c = i % C;
    for (int64_t p = 0; p < P; ++p) {
      const int32_t t = positions[b * P + p];
      if (t == kEmptySlot) continue;
      din[(b * T + t) * C + c] += dout[(b * P + p) * C + c];
    }
  }
}

void check_positions(const KernelCall& call, const Tensor& positions, int64_t T) {
  const int64_t P = positions.shape()[1];
  const BadId bad = first_bad_id(call, positions.i32(), positions.numel(), T, kEmptySlot);
  if (bad.index < 0) return;
  throw Error(std::string(call.kernel()) + ": positions[" + std::to_string(bad.index / P) +
              ", " + std::to_string(bad.index % P) + "] = " + std::to_string(bad.value) +
              " is outside [0, " + std::to_string(T) +
              ") (the sequence length) and not -1 (an empty slot)");
}

}  // namespace

void gather_rows_forward(Tensor out, Tensor in, Tensor positions) {
  KernelCall call("gather_rows_forward", {{"out", out}, {"in", in}, {"positions", positions}});
  const int64_t B = in.shape()[0], T = in.shape()[1], C = in.shape()[2];
  const int64_t P = positions.shape()[1];
  if (B * P == 0) return;
  check_positions(call, positions, T);
  if (C == 0) return;
  gather<<<blocks_for(B * P * C, kThreads), kThreads, 0, call.stream()>>>(
      out.f32(), in.f32(), positions.i32(), B, P, T, C);
  LOOM_CUDA_CHECK_LAUNCH("gather");
}

void gather_rows_backward(Tensor din, Tensor dout, Tensor positions) {
  KernelCall call("gather_rows_backward", {{"din", din}, {"dout", dout}, {"positions", positions}});
  const int64_t B = din.shape()[0], T = din.shape()[1], C = din.shape()[2];
  const int64_t P = positions.shape()[1];
  if (B * P > 0) check_positions(call, positions, T);
  if (din.numel() == 0) return;
  LOOM_CUDA_CHECK(cudaMemsetAsync(din.data(), 0, din.nbytes(), call.stream()));
  if (B * P == 0) return;
  scatter_add<<<blocks_for(B * C, kThreads), kThreads, 0, call.stream()>>>(
      din.f32(), dout.f32(), positions.i32(), B, P, T, C);
  LOOM_CUDA_CHECK_LAUNCH("scatter_add");
}

}  // namespace loom::cuda
