// word2vec's building blocks: Huffman codes against a brute-force optimum, the negative-
// sampling table against count^0.75 (exactly and by a chi-square test of draws), the
// subsampling keep probabilities against word2vec's formula, the NS and HS loss gradients
// against central finite differences in double precision, and the float32 SGD kernels
// against -lr * those gradients (Note [Kernel tolerance]), tolerances that a wrong sign or
// factor exceeds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "core/rng.h"
#include "models/word2vec/huffman.h"
#include "models/word2vec/noise_table.h"
#include "models/word2vec/word2vec.h"
#include "models/word2vec/word2vec_kernel.h"

namespace loom {
namespace {

// The least sum of count * depth over all binary trees with these leaves, by trying every
// pair to merge first (exponential: small inputs only). Merging a and b costs a + b.
int64_t brute_force_cost(std::vector<int64_t> w) {
  if (w.size() <= 1) return 0;
  int64_t best = INT64_MAX;
  for (size_t i = 0; i < w.size(); ++i) {
    for (size_t j = i + 1; j < w.size(); ++j) {
      std::vector<int64_t> rest;
      for (size_t k = 0; k < w.size(); ++k)
        if (k != i && k != j) rest.push_back(w[k]);
      rest.push_back(w[i] + w[j]);
      best = std::min(best, w[i] + w[j] + brute_force_cost(rest));
    }
  }
  return best;
}

std::string code_string(const HuffmanTree& t, int64_t w) {
  std::string s;
  for (int64_t j = t.offset[static_cast<size_t>(w)]; j < t.offset[static_cast<size_t>(w) + 1]; ++j)
    s += static_cast<char>('0' + t.code[static_cast<size_t>(j)]);
  return s;
}

void check_tree(const std::vector<int64_t>& counts, bool brute) {
  const HuffmanTree t = build_huffman(counts);
  const int64_t V = static_cast<int64_t>(counts.size());
  ASSERT_EQ(t.size(), V);
  // Prefix-free: no code is a prefix of another (and none is empty unless V == 1).
  std::vector<std::string> codes;
  for (int64_t w = 0; w < V; ++w) codes.push_back(code_string(t, w));
  for (int64_t a = 0; a < V; ++a) {
    if (V > 1) {
      ASSERT_FALSE(codes[static_cast<size_t>(a)].empty()) << "word " << a;
    }
    for (int64_t b = 0; b < V; ++b) {
      if (a == b) continue;
      ASSERT_NE(codes[static_cast<size_t>(b)].rfind(codes[static_cast<size_t>(a)], 0), 0u)
          << "code of " << a << " (" << codes[static_cast<size_t>(a)] << ") is a prefix of " << b << "'s";
    }
  }
  // Kraft equality (a full tree) and consistent inner nodes: the same prefix is the same node.
  double kraft = 0;
  std::map<std::string, int32_t> node_of_prefix;
  for (int64_t w = 0; w < V; ++w) {
    kraft += std::ldexp(1.0, -t.length(w));
    for (int j = 0; j < t.length(w); ++j) {
      const int32_t node = t.point[static_cast<size_t>(t.offset[static_cast<size_t>(w)] + j)];
      ASSERT_GE(node, 0);
      ASSERT_LT(node, V - 1);
      auto [it, fresh] = node_of_prefix.emplace(codes[static_cast<size_t>(w)].substr(0, static_cast<size_t>(j)), node);
      ASSERT_EQ(it->second, node) << "word " << w << " depth " << j;
    }
  }
  if (V > 1) {
    EXPECT_DOUBLE_EQ(kraft, 1.0);
    EXPECT_EQ(static_cast<int64_t>(node_of_prefix.size()), V - 1) << "every inner node is used once";
  }
  if (brute) {
    int64_t cost = 0;
    for (int64_t w = 0; w < V; ++w) cost += counts[static_cast<size_t>(w)] * t.length(w);
    EXPECT_EQ(cost, brute_force_cost(counts)) << "not an optimal code";
  }
}

TEST(Word2VecHuffman, PrefixFreeAndOptimalAgainstBruteForce) {
  std::mt19937 gen(5);
  for (int trial = 0; trial < 60; ++trial) {
    const int V = 1 + trial % 7;
    std::vector<int64_t> counts(static_cast<size_t>(V));
    for (int64_t& c : counts) c = 1 + static_cast<int64_t>(gen() % (trial % 2 ? 1000 : 4));   // ties too
    std::sort(counts.rbegin(), counts.rend());
    check_tree(counts, true);
  }
}

TEST(Word2VecHuffman, ZipfVocabularyFrequentWordsGetShortCodes) {
  std::vector<int64_t> counts;
  for (int i = 1; i <= 5000; ++i) counts.push_back(1000000 / i + 1);
  check_tree(counts, false);
  const HuffmanTree t = build_huffman(counts);
  for (int64_t w = 1; w < 5000; ++w) {   // optimal codes: a strictly more frequent word is never longer
    if (counts[static_cast<size_t>(w - 1)] > counts[static_cast<size_t>(w)]) {
      EXPECT_LE(t.length(w - 1), t.length(w)) << "word " << w;
    }
  }
  EXPECT_LE(t.length(0), 5);
}

TEST(Word2VecNoise, TableMatchesCountPowerExactlyAndByChiSquare) {
  std::vector<int64_t> counts;
  for (int i = 1; i <= 40; ++i) counts.push_back(5 + 10000 / (i * i));
  const NoiseTable table(counts, 0.75);
  std::vector<double> p(counts.size());
  double sum = 0;
  for (size_t i = 0; i < counts.size(); ++i) sum += p[i] = std::pow(static_cast<double>(counts[i]), 0.75);
  for (double& x : p) x /= sum;
  const std::vector<double> implied = table.implied_probabilities();
  for (size_t i = 0; i < p.size(); ++i) EXPECT_NEAR(implied[i], p[i], 1e-8) << "word " << i;

  // Draws: Pearson's chi-square with 39 degrees of freedom; the 0.999 quantile is 72.05.
  const int64_t draws = 2000000;
  std::vector<int64_t> seen(counts.size(), 0);
  Rng rng(3, 0, RngPurpose::kTest);
  for (int64_t i = 0; i < draws; ++i) ++seen[static_cast<size_t>(table.sample(rng.next_u64()))];
  double chi2 = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    const double expected = p[i] * static_cast<double>(draws);
    chi2 += (static_cast<double>(seen[i]) - expected) * (static_cast<double>(seen[i]) - expected) / expected;
  }
  std::printf("chi-square %.2f (39 degrees of freedom)\n", chi2);
  EXPECT_LT(chi2, 72.05);
  // And the test can fail: count^1 (word2vec without the 0.75) is rejected.
  double chi2_wrong = 0;
  double sum1 = std::accumulate(counts.begin(), counts.end(), 0.0);
  for (size_t i = 0; i < p.size(); ++i) {
    const double expected = static_cast<double>(counts[i]) / sum1 * static_cast<double>(draws);
    chi2_wrong += (static_cast<double>(seen[i]) - expected) * (static_cast<double>(seen[i]) - expected) / expected;
  }
  EXPECT_GT(chi2_wrong, 1000.0);
}

TEST(Word2VecSubsampling, KeepProbabilitiesFollowTheFormula) {
  // word2vec's expression, written out: ran = (sqrt(cn / (sample * train_words)) + 1) *
  // (sample * train_words) / cn; a word is kept when ran >= a uniform draw.
  for (double sample : {1e-3, 1e-4, 1e-5}) {
    for (int64_t count : {1, 5, 100, 1000, 20000, 500000}) {
      const double st = sample * 17000000.0, c = static_cast<double>(count);
      const double want = std::min(1.0, (std::sqrt(c / st) + 1.0) * st / c);
      EXPECT_DOUBLE_EQ(subsample_keep(count, 17000000, sample), want) << count << " " << sample;
    }
  }
  EXPECT_EQ(subsample_keep(10, 1000, 0.0), 1.0);
  EXPECT_NEAR(subsample_keep(100000, 1000000, 1e-4), (std::sqrt(100000.0 / 100.0) + 1) * 100.0 / 100000.0, 1e-12);
}

// Central differences of `loss` at x (n,) against `grad`, relative tolerance.
void check_gradient(const std::function<double(const std::vector<double>&)>& loss, std::vector<double> x,
                    const std::vector<double>& grad, const char* what) {
  const double h = 1e-6;
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + h;
    const double up = loss(x);
    x[i] = saved - h;
    const double down = loss(x);
    x[i] = saved;
    const double numeric = (up - down) / (2 * h);
    EXPECT_NEAR(grad[i], numeric, 1e-6 * std::max(1.0, std::fabs(numeric))) << what << " index " << i;
  }
}

TEST(Word2VecGradients, NegativeSamplingMatchesFiniteDifferences) {
  const int N = 6;
  const int64_t D = 7;
  std::mt19937 gen(11);
  std::normal_distribution<double> normal(0.0, 0.7);
  std::vector<double> x(static_cast<size_t>((1 + N) * D));   // [h (D), out (N, D)]
  for (double& v : x) v = normal(gen);
  std::vector<double> grad(x.size());
  ns_loss_grad<double>(x.data(), x.data() + D, N, D, grad.data(), grad.data() + D);
  auto loss = [&](const std::vector<double>& y) { return ns_loss_grad<double>(y.data(), y.data() + D, N, D, nullptr, nullptr); };
  check_gradient(loss, x, grad, "ns");
}

TEST(Word2VecGradients, HierarchicalSoftmaxMatchesFiniteDifferences) {
  const int L = 5;
  const int64_t D = 6;
  const uint8_t codes[L] = {1, 0, 0, 1, 1};
  std::mt19937 gen(12);
  std::normal_distribution<double> normal(0.0, 0.7);
  std::vector<double> x(static_cast<size_t>((1 + L) * D));
  for (double& v : x) v = normal(gen);
  std::vector<double> grad(x.size());
  hs_loss_grad<double>(x.data(), x.data() + D, codes, L, D, grad.data(), grad.data() + D);
  auto loss = [&](const std::vector<double>& y) {
    return hs_loss_grad<double>(y.data(), y.data() + D, codes, L, D, nullptr, nullptr);
  };
  check_gradient(loss, x, grad, "hs");
}

// Note [Kernel tolerance]
// The float32 kernels read sigma and log sigma from word2vec's tables (checked against the
// exact functions in SigmoidTablesAreClose), so the references below take the table's
// value at the same logit and do the rest in double: what remains is float32 rounding of
// D-term dot products and a few additions on values of order 1, about one float32 ulp
// (measured: at most 7e-8 here). kStepTol = 1e-6 leaves room for another compiler's
// rounding: a wrong sign, a missing lr, a CBOW step divided by the number of context
// words, dot products taken before a repeated output's update, or the exact sigmoid in
// place of the table miss by 3e-3 to 1 (measured), and each test shows it with the wrong
// reference (must_fail: more than 100 x kStepTol).
constexpr double kStepTol = 1e-6;
constexpr double kLossTol = 1e-6;   // relative, the loss summed in double

double table_sigmoid(double f) { return static_cast<double>(sigmoid_table(static_cast<float>(f))); }
double table_log_sigmoid(double f) { return static_cast<double>(log_sigmoid_table(static_cast<float>(f))); }

// ns_loss_grad's formulas (word2vec_kernel.h) with the table's sigma: loss of h (D,)
// against out (N, D), row 0 the positive; dh (D,), dout (N, D).
double ns_table_grad(const std::vector<double>& h, const std::vector<double>& out, int N, int64_t D,
                     std::vector<double>& dh, std::vector<double>& dout) {
  double loss = 0;
  dh.assign(static_cast<size_t>(D), 0.0);
  dout.assign(static_cast<size_t>(N * D), 0.0);
  for (int n = 0; n < N; ++n) {
    double f = 0;
    for (int64_t k = 0; k < D; ++k) f += h[static_cast<size_t>(k)] * out[static_cast<size_t>(n * D + k)];
    loss -= table_log_sigmoid(n == 0 ? f : -f);
    const double e = table_sigmoid(f) - (n == 0 ? 1.0 : 0.0);
    for (int64_t k = 0; k < D; ++k) {
      dh[static_cast<size_t>(k)] += e * out[static_cast<size_t>(n * D + k)];
      dout[static_cast<size_t>(n * D + k)] = e * h[static_cast<size_t>(k)];
    }
  }
  return loss;
}

// hs_loss_grad's formulas with the table's sigma: h (D,) against nodes (L, D), codes (L,).
double hs_table_grad(const std::vector<double>& h, const std::vector<double>& nodes, const uint8_t* codes, int L,
                     int64_t D, std::vector<double>& dh, std::vector<double>& dnodes) {
  double loss = 0;
  dh.assign(static_cast<size_t>(D), 0.0);
  dnodes.assign(static_cast<size_t>(L * D), 0.0);
  for (int j = 0; j < L; ++j) {
    double f = 0;
    for (int64_t k = 0; k < D; ++k) f += h[static_cast<size_t>(k)] * nodes[static_cast<size_t>(j * D + k)];
    loss -= table_log_sigmoid(codes[j] ? -f : f);
    const double e = table_sigmoid(f) - (codes[j] ? 0.0 : 1.0);
    for (int64_t k = 0; k < D; ++k) {
      dh[static_cast<size_t>(k)] += e * nodes[static_cast<size_t>(j * D + k)];
      dnodes[static_cast<size_t>(j * D + k)] = e * h[static_cast<size_t>(k)];
    }
  }
  return loss;
}

// Rows `ids` of a (V, D) matrix, one after the other, in double.
std::vector<double> rows_of(const std::vector<float>& m, const std::vector<int32_t>& ids, int64_t D) {
  std::vector<double> out;
  for (int32_t r : ids) out.insert(out.end(), m.begin() + r * D, m.begin() + (r + 1) * D);
  return out;
}

// The expected rows of a (V, D) matrix after a step: `want` maps a row id to its values.
using Rows = std::map<int32_t, std::vector<double>>;

// Largest |m[row] - want[row]| over the rows of `want`.
double worst_error(const std::vector<float>& m, const Rows& want, int64_t D) {
  double worst = 0;
  for (const auto& [r, v] : want)
    for (int64_t k = 0; k < D; ++k)
      worst = std::max(worst, std::fabs(static_cast<double>(m[static_cast<size_t>(r * D + k)]) - v[static_cast<size_t>(k)]));
  return worst;
}

// EXPECTs every row of `want` within kStepTol, printing the first mismatch.
void expect_rows(const std::vector<float>& m, const Rows& want, int64_t D, const std::string& what) {
  for (const auto& [r, v] : want)
    for (int64_t k = 0; k < D; ++k)
      ASSERT_NEAR(m[static_cast<size_t>(r * D + k)], v[static_cast<size_t>(k)], kStepTol)
          << what << " row " << r << " component " << k;
}

// A reference gone wrong must miss by far more than the tolerance: the test can fail.
void must_fail(const std::vector<float>& m, const Rows& wrong, int64_t D, const std::string& what) {
  EXPECT_GT(worst_error(m, wrong, D), 100 * kStepTol) << what << " would pass: the tolerance cannot tell it";
}

// x0 + scale * step, row by row: the value after an SGD step of -lr * gradient is
// x0 + (-lr) * gradient.
Rows stepped(const std::vector<float>& m0, const std::vector<int32_t>& ids, const std::vector<double>& step,
             double scale, int64_t D) {
  Rows out;
  for (size_t i = 0; i < ids.size(); ++i) {
    std::vector<double>& v = out[ids[i]];
    if (v.empty()) v.assign(m0.begin() + ids[i] * D, m0.begin() + (ids[i] + 1) * D);
    for (int64_t k = 0; k < D; ++k) v[static_cast<size_t>(k)] += scale * step[i * static_cast<size_t>(D) + static_cast<size_t>(k)];
  }
  return out;
}

// The float32 kernels take one SGD step of -lr * the gradient above, with the table's sigma
// (Note [Kernel tolerance]). Skip-gram NS: every context row against the shared outputs.
TEST(Word2VecKernels, StepsAreMinusLrTimesTheGradient) {
  const int64_t V = 12, D = 8;
  const float lr = 0.1f;
  std::mt19937 gen(13);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  std::vector<float> syn0(static_cast<size_t>(V * D)), syn1neg(syn0.size()), syn1(static_cast<size_t>((V - 1) * D));
  for (float& v : syn0) v = normal(gen);
  for (float& v : syn1neg) v = normal(gen);
  for (float& v : syn1) v = normal(gen);
  const std::vector<float> syn0_0 = syn0, syn1neg_0 = syn1neg, syn1_0 = syn1;
  Word2VecView view{syn0.data(), syn1neg.data(), syn1.data(), D};
  Word2VecScratch scratch(4, 4, D);
  // Skip-gram NS: contexts {1, 2}, outputs {5 (centre), 7, 9}; both contexts see the
  // output rows before the step (Note [Batched negative sampling]).
  const std::vector<int32_t> context = {1, 2}, outputs = {5, 7, 9};
  const double loss = sg_ns_window(view, context.data(), 2, outputs.data(), 3, lr, scratch);
  const std::vector<double> out = rows_of(syn1neg_0, outputs, D);
  std::vector<double> dh_all, dout_all(static_cast<size_t>(3 * D), 0.0), dh, dout;
  double want_loss = 0;
  for (int b = 0; b < 2; ++b) {
    want_loss += ns_table_grad(rows_of(syn0_0, {context[static_cast<size_t>(b)]}, D), out, 3, D, dh, dout);
    dh_all.insert(dh_all.end(), dh.begin(), dh.end());
    for (size_t i = 0; i < dout.size(); ++i) dout_all[i] += dout[i];
  }
  EXPECT_NEAR(loss, want_loss, kLossTol * std::max(1.0, want_loss));
  expect_rows(syn0, stepped(syn0_0, context, dh_all, -lr, D), D, "skip-gram NS syn0");
  expect_rows(syn1neg, stepped(syn1neg_0, outputs, dout_all, -lr, D), D, "skip-gram NS syn1neg");
  must_fail(syn0, stepped(syn0_0, context, dh_all, +lr, D), D, "the gradient's sign flipped");
  must_fail(syn1neg, stepped(syn1neg_0, outputs, dout_all, -1.0, D), D, "the step without lr");
  {   // the exact sigmoid in place of the table
    std::vector<double> dh_exact(static_cast<size_t>(D)), dout_exact(static_cast<size_t>(3 * D)), all;
    for (int b = 0; b < 2; ++b) {
      const std::vector<double> h = rows_of(syn0_0, {context[static_cast<size_t>(b)]}, D);
      ns_loss_grad<double>(h.data(), out.data(), 3, D, dh_exact.data(), dout_exact.data());
      all.insert(all.end(), dh_exact.begin(), dh_exact.end());
    }
    EXPECT_GT(worst_error(syn0, stepped(syn0_0, context, all, -lr, D), D), 10 * kStepTol)
        << "the table's sigma and the exact one are indistinguishable here: the test cannot see a table change";
  }

  // CBOW HS: h = mean of rows {3, 4}; path through nodes {0, 4, 6} with codes {1, 0, 1}.
  syn0 = syn0_0;
  const std::vector<int32_t> ctx2 = {3, 4}, points = {0, 4, 6};
  const uint8_t codes[3] = {1, 0, 1};
  std::vector<double> h(static_cast<size_t>(D)), dnodes;
  for (int64_t k = 0; k < D; ++k)
    h[static_cast<size_t>(k)] = (static_cast<double>(syn0_0[static_cast<size_t>(3 * D + k)]) +
                                 static_cast<double>(syn0_0[static_cast<size_t>(4 * D + k)])) / 2.0;
  const double want_hs = hs_table_grad(h, rows_of(syn1_0, points, D), codes, 3, D, dh, dnodes);
  const double hs = cbow_hs_window(view, ctx2.data(), 2, HuffmanPath{points.data(), codes, 3}, lr, scratch);
  EXPECT_NEAR(hs, want_hs, kLossTol * std::max(1.0, want_hs));
  // CBOW: every context row takes the whole input step (word2vec_kernel.h).
  std::vector<double> dh_twice = dh;
  dh_twice.insert(dh_twice.end(), dh.begin(), dh.end());
  expect_rows(syn0, stepped(syn0_0, ctx2, dh_twice, -lr, D), D, "CBOW HS syn0");
  expect_rows(syn1, stepped(syn1_0, points, dnodes, -lr, D), D, "CBOW HS syn1");
  must_fail(syn0, stepped(syn0_0, ctx2, dh_twice, -lr / 2, D), D, "the input step divided by the context size");
  must_fail(syn1, stepped(syn1_0, points, dnodes, +lr, D), D, "the node gradient's sign flipped");
}

// CBOW NS against one output after the other in double precision (word2vec's order: the
// input gradient from each row before its update), with distinct outputs and with a noise
// word drawn twice, whose second occurrence must see the first one's update (lr large
// enough that taking both dot products first would be off by ~1e-2; must_fail shows it).
TEST(Word2VecKernels, CbowNegativeSamplingMatchesOneOutputAfterTheOther) {
  const int64_t V = 12, D = 8;
  const float lr = 0.5f;
  std::mt19937 gen(29);
  std::normal_distribution<float> normal(0.0f, 0.5f);
  std::vector<float> syn0_0(static_cast<size_t>(V * D)), syn1neg_0(syn0_0.size());
  for (float& v : syn0_0) v = normal(gen);
  for (float& v : syn1neg_0) v = normal(gen);
  const std::vector<int32_t> context = {1, 2, 4};
  const std::vector<std::vector<int32_t>> cases = {{5, 7, 9}, {5, 7, 7, 9}};
  for (const std::vector<int32_t>& outputs : cases) {
    std::vector<float> syn0 = syn0_0, syn1neg = syn1neg_0;
    Word2VecView view{syn0.data(), syn1neg.data(), nullptr, D};
    Word2VecScratch scratch(6, 6, D);
    const int N = static_cast<int>(outputs.size());
    const std::string what = std::to_string(N) + " outputs: ";
    const double loss = cbow_ns_window(view, context.data(), 3, outputs.data(), N, lr, scratch);
    // sequential: each output's dot product sees the earlier outputs' updates; batched: all
    // dot products from the rows before the window (wrong when an output repeats).
    for (const bool sequential : {true, false}) {
      std::vector<double> h(static_cast<size_t>(D), 0.0), e(static_cast<size_t>(D), 0.0);
      std::vector<double> out(syn1neg_0.begin(), syn1neg_0.end());
      const std::vector<double> out_0 = out;
      for (int32_t c : context)
        for (int64_t k = 0; k < D; ++k) h[static_cast<size_t>(k)] += static_cast<double>(syn0_0[static_cast<size_t>(c * D + k)]) / 3.0;
      double want_loss = 0.0;
      for (int n = 0; n < N; ++n) {
        double* o = out.data() + outputs[static_cast<size_t>(n)] * D;
        const double* dot_row = sequential ? o : out_0.data() + outputs[static_cast<size_t>(n)] * D;
        double f = 0.0;
        for (int64_t k = 0; k < D; ++k) f += h[static_cast<size_t>(k)] * dot_row[k];
        want_loss -= table_log_sigmoid(n == 0 ? f : -f);
        const double g = lr * ((n == 0 ? 1.0 : 0.0) - table_sigmoid(f));
        for (int64_t k = 0; k < D; ++k) {
          e[static_cast<size_t>(k)] += g * o[k];
          o[k] += g * h[static_cast<size_t>(k)];
        }
      }
      Rows want_in, want_out, wrong_in;
      for (int32_t c : context) {
        std::vector<double>& v = want_in[c];
        std::vector<double>& w = wrong_in[c];
        for (int64_t k = 0; k < D; ++k) {
          const double x0 = static_cast<double>(syn0_0[static_cast<size_t>(c * D + k)]);
          v.push_back(x0 + e[static_cast<size_t>(k)]);
          w.push_back(x0 - e[static_cast<size_t>(k)]);
        }
      }
      for (int32_t w : outputs) want_out[w].assign(out.begin() + w * D, out.begin() + (w + 1) * D);
      if (!sequential) {
        if (N == 4) must_fail(syn1neg, want_out, D, what + "dot products before any update");
        continue;
      }
      EXPECT_NEAR(loss, want_loss, kLossTol * std::max(1.0, want_loss)) << what;
      expect_rows(syn0, want_in, D, what + "context row");
      expect_rows(syn1neg, want_out, D, what + "syn1neg");
      must_fail(syn0, wrong_in, D, what + "the input step's sign flipped");
    }
  }
}

// The hot rows of Note [word2vec synchronisation] on a tree worked by hand: counts
// {8, 4, 2, 1, 1} give inner nodes 0 = (3, 4) weight 2, 1 = (2, node 0) 4, 2 = (1, node 1) 8
// and the root 3 = (0, node 2) 16; with expected = counts a node is visited as often as
// its weight.
TEST(Word2VecSyncPlan, HotWordsArePrefixAndHotNodesTheTopOfTheTree) {
  const std::vector<int64_t> counts{8, 4, 2, 1, 1};
  const HuffmanTree tree = build_huffman(counts);
  const std::vector<double> expected(counts.begin(), counts.end());
  struct Case { double above; int64_t words, nodes; };
  for (const Case& c : {Case{0, 0, 0}, Case{17, 0, 0}, Case{16, 0, 1}, Case{8, 1, 2}, Case{4, 2, 3},
                        Case{2, 3, 4}, Case{1, 5, 4}, Case{0.5, 5, 4}}) {
    int64_t nodes = -1;
    EXPECT_EQ(word2vec_hot_rows(expected, c.above, &tree, &nodes), c.words) << "above " << c.above;
    EXPECT_EQ(nodes, c.nodes) << "above " << c.above;
  }
  // The prefix stops at the first word below the threshold, and no tree means no nodes.
  int64_t nodes = -1;
  EXPECT_EQ(word2vec_hot_rows({300, 150, 99.5, 120}, 100, nullptr, &nodes), 2);
  EXPECT_EQ(nodes, 0);
}

TEST(Word2VecKernels, SigmoidTablesAreClose) {
  for (float x = -7.0f; x <= 7.0f; x += 0.01f) {
    EXPECT_NEAR(sigmoid_table(x), sigmoid(static_cast<double>(x)), 4e-3) << x;
    EXPECT_NEAR(log_sigmoid_table(x), log_sigmoid(static_cast<double>(x)), 5e-3) << x;
  }
}

}  // namespace
}  // namespace loom
