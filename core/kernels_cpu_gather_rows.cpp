// CPU reference of gather_rows (core/kernels.h): out[b, p] = in[b, positions[b, p]] and
// its scatter-add backward. Positions are range-checked before anything is written.
//
// Threads split the sequences: the rows of sequence b come only from in[b] and go only to
// din[b], so each din[b, t] is summed by one thread in p order whatever the thread count
// (the same determinism as Note [Deterministic embedding gradients]).
#include <algorithm>
#include <cstring>
#include <string>

#include "core/kernels_cpu.h"
#include "core/kernels_cpu_detail.h"

namespace loom::cpu {
namespace {
using namespace detail;

constexpr int32_t kEmptySlot = -1;

// Every positions[b, p] in [0, T) or kEmptySlot; otherwise a loom::Error naming (b, p).
void check_positions(const char* kernel, const int32_t* positions, int64_t B, int64_t P,
                     int64_t T) {
  for (int64_t n = 0; n < B * P; ++n) {
    const int32_t t = positions[n];
    if ((t >= 0 && t < T) || t == kEmptySlot) continue;
    throw Error(std::string(kernel) + ": positions[" + std::to_string(n / P) + ", " +
                std::to_string(n % P) + "] = " + std::to_string(t) + " is outside [0, " +
                std::to_string(T) + ") (the sequence length) and not -1 (an empty slot)");
  }
}

template <class F>
void gather_rows_forward_t(Tensor out_t, Tensor in_t, Tensor positions_t) {
  const int64_t B = in_t.shape()[0], T = in_t.shape()[1], C = in_t.shape()[2];
  const int64_t P = positions_t.shape()[1];
  F* out = ptr<F>(out_t);                             // (B, P, C)
  const F* in = ptr<F>(in_t);                         // (B, T, C)
  const int32_t* positions = ptr<int32_t>(positions_t);   // (B, P)
  check_positions("gather_rows_forward", positions, B, P, T);
#pragma omp parallel for schedule(static) if (B * P * C >= kParallelMin)
  for (int64_t n = 0; n < B * P; ++n) {
    const int32_t t = positions[n];
    F* o = out + n * C;
    if (t == kEmptySlot) {
      std::fill(o, o + C, F(0));
    } else {
      std::memcpy(o, in + ((n / P) * T + t) * C, size_t(C) * sizeof(F));
    }
  }
}

template <class F>
void gather_rows_backward_t(Tensor din_t, Tensor dout_t, Tensor positions_t) {
  const int64_t B = din_t.shape()[0], T = din_t.shape()[1], C = din_t.shape()[2];
  const int64_t P = positions_t.shape()[1];
  F* din = ptr<F>(din_t);                             // (B, T, C) written
  const F* dout = ptr<F>(dout_t);                     // (B, P, C)
  const int32_t* positions = ptr<int32_t>(positions_t);   // (B, P)
  check_positions("gather_rows_backward", positions, B, P, T);
#pragma omp parallel for schedule(static) if (B * T * C >= kParallelMin)
  for (int64_t b = 0; b < B; ++b) {
    F* d = din + b * T * C;
    std::fill(d, d + T * C, F(0));
    for (int64_t p = 0; p < P; ++p) {
      const int32_t t = positions[b * P + p];
      if (t == kEmptySlot) continue;
      F* dst = d + int64_t{t} * C;
      const F* src = dout + (b * P + p) * C;
      for (int64_t c = 0; c < C; ++c) dst[c] += src[c];
    }
  }
}

}  // namespace

void gather_rows_forward(Tensor out, Tensor in, Tensor positions) {
  if (is_f64(out)) return gather_rows_forward_t<double>(out, in, positions);
  gather_rows_forward_t<float>(out, in, positions);
}

void gather_rows_backward(Tensor din, Tensor dout, Tensor positions) {
  if (is_f64(din)) return gather_rows_backward_t<double>(din, dout, positions);
  gather_rows_backward_t<float>(din, dout, positions);
}

}  // namespace loom::cpu
