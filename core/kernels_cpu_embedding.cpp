// CPU reference of the embedding family (core/kernels.h):
//   out[b, t] = wte[tokens[b, t]] + wpe[t] (+ wse[segments[b, t]]).
// Ids are range-checked before anything is written (a bad id leaves out untouched).
//
// Note [Deterministic embedding gradients]
// Many positions can carry the same token, so dwte[id] is a sum over the positions of
// that id. Splitting the positions across threads would race (or need atomics, whose
// order depends on timing). Threads split the channels instead: each owns a block of
// kBlock columns of every table and walks all positions in order, so every dwte[id, c]
// is summed in position order whatever the thread count.
#include <algorithm>
#include <string>

#include "core/kernels_cpu.h"
#include "core/kernels_cpu_detail.h"

namespace loom::cpu {
namespace {
using namespace detail;

constexpr int64_t kBlock = 64;   // columns per thread task (Note [Deterministic embedding gradients])

// Every ids[n] in [0, limit); otherwise a loom::Error naming kernel, argument and (b, t).
// Allocates only to build the message.
void check_ids(const char* kernel, const char* name, const int32_t* ids, int64_t B, int64_t T,
               int64_t limit, const char* table) {
  for (int64_t n = 0; n < B * T; ++n) {
    if (ids[n] >= 0 && ids[n] < limit) continue;
    throw Error(std::string(kernel) + ": " + name + "[" + std::to_string(n / T) + ", " +
                std::to_string(n % T) + "] = " + std::to_string(ids[n]) + " is outside [0, " +
                std::to_string(limit) + "), the rows of " + table);
  }
}

template <class F>
void embedding_forward_t(Tensor out_t, Tensor tokens_t, Tensor segments_t, Tensor wte_t,
                         Tensor wpe_t, Tensor wse_t) {
  const char* k = "embedding_forward";
  const int64_t B = tokens_t.shape()[0], T = tokens_t.shape()[1], C = wte_t.shape()[1];
  F* out = ptr<F>(out_t);                        // (B, T, C)
  const int32_t* tokens = ptr<int32_t>(tokens_t);     // (B, T)
  const int32_t* segments = ptr<int32_t>(segments_t); // (B, T) or null
  const F* wte = ptr<F>(wte_t);                  // (V, C)
  const F* wpe = ptr<F>(wpe_t);                  // (P, C), P >= T
  const F* wse = ptr<F>(wse_t);                  // (S, C) or null
  check_ids(k, "tokens", tokens, B, T, wte_t.shape()[0], "wte");
  if (segments != nullptr) check_ids(k, "segments", segments, B, T, wse_t.shape()[0], "wse");
#pragma omp parallel for schedule(static) if (B * T * C >= kParallelMin)
  for (int64_t n = 0; n < B * T; ++n) {
    F* o = out + n * C;
    const F* e = wte + int64_t{tokens[n]} * C;
    const F* p = wpe + (n % T) * C;
    if (segments == nullptr) {
      for (int64_t c = 0; c < C; ++c) o[c] = e[c] + p[c];
    } else {
      const F* s = wse + int64_t{segments[n]} * C;
      for (int64_t c = 0; c < C; ++c) o[c] = e[c] + p[c] + s[c];
    }
  }
}

// table[ids[n], c0:c0+w] += dout[n, c0:c0+w] for n in order (ids null: row n % T, the
// position).
template <class F>
void scatter_add_block(F* table, const F* dout, const int32_t* ids, int64_t N, int64_t T,
                       int64_t C, int64_t c0, int64_t w) {
  for (int64_t n = 0; n < N; ++n) {
    const int64_t row = ids != nullptr ? int64_t{ids[n]} : n % T;
    F* dst = table + row * C + c0;
    const F* src = dout + n * C + c0;
    for (int64_t j = 0; j < w; ++j) dst[j] += src[j];
  }
}

template <class F>
void embedding_backward_t(Tensor dwte_t, Tensor dwpe_t, Tensor dwse_t, Tensor dout_t,
                          Tensor tokens_t, Tensor segments_t) {
  const char* k = "embedding_backward";
  const int64_t B = tokens_t.shape()[0], T = tokens_t.shape()[1], C = dwte_t.shape()[1];
  F* dwte = ptr<F>(dwte_t);                      // (V, C)  accumulated
  F* dwpe = ptr<F>(dwpe_t);                      // (P, C)  accumulated
  F* dwse = ptr<F>(dwse_t);                      // (S, C) accumulated, or null
  const F* dout = ptr<F>(dout_t);                // (B, T, C)
  const int32_t* tokens = ptr<int32_t>(tokens_t);     // (B, T)
  const int32_t* segments = ptr<int32_t>(segments_t); // (B, T) or null
  check_ids(k, "tokens", tokens, B, T, dwte_t.shape()[0], "dwte");
  if (segments != nullptr) check_ids(k, "segments", segments, B, T, dwse_t.shape()[0], "dwse");
  const int64_t N = B * T, blocks = (C + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(static) if (N * C >= kParallelMin)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const int64_t c0 = blk * kBlock, w = std::min(kBlock, C - c0);
    scatter_add_block(dwte, dout, tokens, N, T, C, c0, w);
    scatter_add_block(dwpe, dout, static_cast<const int32_t*>(nullptr), N, T, C, c0, w);
    if (segments != nullptr) scatter_add_block(dwse, dout, segments, N, T, C, c0, w);
  }
}

}  // namespace

void embedding_forward(Tensor out, Tensor tokens, Tensor segments, Tensor wte, Tensor wpe,
                       Tensor wse) {
  if (is_f64(out)) return embedding_forward_t<double>(out, tokens, segments, wte, wpe, wse);
  embedding_forward_t<float>(out, tokens, segments, wte, wpe, wse);
}

void embedding_backward(Tensor dwte, Tensor dwpe, Tensor dwse, Tensor dout, Tensor tokens,
                        Tensor segments) {
  if (is_f64(dwte))
    return embedding_backward_t<double>(dwte, dwpe, dwse, dout, tokens, segments);
  embedding_backward_t<float>(dwte, dwpe, dwse, dout, tokens, segments);
}

}  // namespace loom::cpu
