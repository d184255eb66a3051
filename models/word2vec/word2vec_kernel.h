#pragma once
// word2vec's per-window math (Mikolov et al. 2013): the losses with their gradients as
// templates (float for nothing, double for the finite-difference tests), the sigmoid table,
// subsampling, and the fused float32 SGD updates that training runs.
//
// Negative sampling, one input vector h (D,) against N output rows o_0 .. o_{N-1} (N, D),
// o_0 the word to predict, the others K noise words:
//   J = -log sigma(h . o_0) - sum_{n >= 1} log sigma(-h . o_n)
//   dJ/dh = sum_n (sigma(h . o_n) - t_n) o_n,   dJ/do_n = (sigma(h . o_n) - t_n) h,   t_n = [n == 0]
// Hierarchical softmax, h against the inner nodes u_j (L, D) on the word's Huffman path
// with codes c_j (huffman.h):
//   J = -sum_j log sigma((1 - 2 c_j) h . u_j)
//   dJ/dh = sum_j (sigma(h . u_j) - (1 - c_j)) u_j,   dJ/du_j = (sigma(h . u_j) - (1 - c_j)) h
// Skip-gram: h = syn0[context word], the word to predict is the window's centre word.
// CBOW: h = mean of syn0 over the window's context words, predicting the centre word.
// An SGD step adds -lr * gradient; like word2vec, CBOW adds -lr dJ/dh to EVERY context row
// (not divided by the number of context words), which is what the original tool trains.
//
// Note [Batched negative sampling]
// Ji et al. 2016 (pWord2Vec): in skip-gram, the B context words of one window all predict
// the same centre word, so they can share one set of K negatives. Then the window is
// three small dense products over the input rows In (B, D) = syn0[context] and the output
// rows Out (N, D) = syn1neg[centre, negatives]:
//   G    = In Out^T                      (B, N) logits
//   G   <- lr * (t - sigma(G))           (B, N) scaled errors, t = [n == 0]
//   dIn  = G Out,   dOut = G^T In        (B, D), (N, D), both from the values before the step
//   syn0[context] += dIn, syn1neg[centre, negatives] += dOut
// Every output row is loaded once per window instead of once per context word, the
// negatives are drawn once per window, and the products run over contiguous rows, so the
// D-loops vectorise (SIMD over D, float32). Repeated ids in a window are fine: the deltas
// are added. word2vec itself draws fresh negatives for every (context, centre) pair; the
// shared set changes the noise estimate's variance, not its expectation.
#include <cmath>
#include <cstdint>
#include <vector>

namespace loom {

// Keep probability of word2vec's subsampling of a word seen `count` times among `total`
// words (the sum of the vocabulary's counts), threshold `sample` (0 = keep all):
//   keep = (sqrt(count / (sample total)) + 1) (sample total) / count, capped at 1.
inline double subsample_keep(int64_t count, int64_t total, double sample) {
  if (sample <= 0) return 1.0;
  const double st = sample * static_cast<double>(total), c = static_cast<double>(count);
  const double keep = (std::sqrt(c / st) + 1.0) * st / c;
  return keep < 1.0 ? keep : 1.0;
}

template <typename T>
T log_sigmoid(T x) {
  return x >= 0 ? -std::log1p(std::exp(-x)) : x - std::log1p(std::exp(x));
}
template <typename T>
T sigmoid(T x) {
  return x >= 0 ? T(1) / (T(1) + std::exp(-x)) : std::exp(x) / (T(1) + std::exp(x));
}

// Negative-sampling loss of h (D,) against out (N, D), row 0 the positive; writes dh (D,)
// and dout (N, D) when not null. Returns J.
template <typename T>
T ns_loss_grad(const T* h, const T* out, int N, int64_t D, T* dh, T* dout) {
  T loss = 0;
  if (dh != nullptr)
    for (int64_t k = 0; k < D; ++k) dh[k] = 0;
  for (int n = 0; n < N; ++n) {
    const T* o = out + n * D;
    T f = 0;
    for (int64_t k = 0; k < D; ++k) f += h[k] * o[k];
    const T t = n == 0 ? T(1) : T(0);
    loss -= log_sigmoid(n == 0 ? f : -f);
    if (dh == nullptr) continue;
    const T e = sigmoid(f) - t;
    for (int64_t k = 0; k < D; ++k) {
      dh[k] += e * o[k];
      dout[n * D + k] = e * h[k];
    }
  }
  return loss;
}

// Hierarchical-softmax loss of h (D,) against nodes (L, D) with codes (L,); gradients as
// ns_loss_grad.
template <typename T>
T hs_loss_grad(const T* h, const T* nodes, const uint8_t* codes, int L, int64_t D, T* dh, T* dnodes) {
  T loss = 0;
  if (dh != nullptr)
    for (int64_t k = 0; k < D; ++k) dh[k] = 0;
  for (int j = 0; j < L; ++j) {
    const T* u = nodes + j * D;
    T f = 0;
    for (int64_t k = 0; k < D; ++k) f += h[k] * u[k];
    loss -= log_sigmoid(codes[j] ? -f : f);
    if (dh == nullptr) continue;
    const T e = sigmoid(f) - (codes[j] ? T(0) : T(1));
    for (int64_t k = 0; k < D; ++k) {
      dh[k] += e * u[k];
      dnodes[j * D + k] = e * h[k];
    }
  }
  return loss;
}

// ---- float32 training kernels ---------------------------------------------------------

// The parameters the updates touch. Rows of row-major arrays; null when not trained.
struct Word2VecView {
  float* syn0 = nullptr;      // (V, D) input vectors
  float* syn1neg = nullptr;   // (V, D) negative-sampling outputs
  float* syn1 = nullptr;      // (V-1, D) hierarchical-softmax inner nodes
  int64_t D = 0;
};

// A word's Huffman path (huffman.h).
struct HuffmanPath {
  const int32_t* point = nullptr;   // (L,)
  const uint8_t* code = nullptr;    // (L,)
  int L = 0;
};

// Per-thread work space, allocated once (max_inputs rows of input-side scratch, max_outputs
// rows of output-side scratch).
struct Word2VecScratch {
  Word2VecScratch() = default;
  Word2VecScratch(int max_inputs, int max_outputs, int64_t D);
  std::vector<float> h;      // (D,) CBOW mean / HS input copy
  std::vector<float> neu1e;  // (D,) accumulated input gradient
  std::vector<float> g;      // (max_inputs, max_outputs) scaled errors
  std::vector<float> din;    // (max_inputs, D)
  std::vector<float> dout;   // (max_outputs, D)
};

// sigma(x) and log sigma(x) from word2vec-style tables over [-6, 6]: sigma is 0 / 1 and
// log sigma is x / 0 beyond it.
float sigmoid_table(float x);
float log_sigmoid_table(float x);

// Skip-gram with negative sampling for one window (Note [Batched negative sampling]):
// context (B,) input ids, outputs (N,) = centre word then negatives. Returns the summed
// loss of the B pairs (before the update).
double sg_ns_window(const Word2VecView& p, const int32_t* context, int B, const int32_t* outputs, int N,
                    float lr, Word2VecScratch& s);

// CBOW with negative sampling: h = mean of syn0[context] (B,), outputs (N,) as above.
double cbow_ns_window(const Word2VecView& p, const int32_t* context, int B, const int32_t* outputs, int N,
                      float lr, Word2VecScratch& s);

// Hierarchical softmax of input h (D,) along `path`: updates syn1 rows, ADDS the input
// step (-lr dJ/dh) into neu1e (D,). Like word2vec, nodes with |h . u| >= 6 are skipped.
double hs_update(const Word2VecView& p, const float* h, const HuffmanPath& path, float lr, float* neu1e);

// Skip-gram with hierarchical softmax: each context row predicts the centre's path.
double sg_hs_window(const Word2VecView& p, const int32_t* context, int B, const HuffmanPath& path, float lr,
                    Word2VecScratch& s);
// CBOW with hierarchical softmax.
double cbow_hs_window(const Word2VecView& p, const int32_t* context, int B, const HuffmanPath& path, float lr,
                      Word2VecScratch& s);

}  // namespace loom
