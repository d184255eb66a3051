#include "models/gpt/gpt_generate.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"

namespace loom {

std::vector<int32_t> gpt_generate(GptNet& net, const std::vector<int32_t>& prompt,
                                  const GenerateOptions& options,
                                  const std::function<void(int32_t)>& on_token) {
  LOOM_CHECK(!prompt.empty(), Error, "generate: the prompt encodes to no tokens");
  const int64_t V = net.shape().vocab_size, context = net.seq_len();
  Rng rng(options.seed, 0, RngPurpose::kSample);
  std::vector<int32_t> seq = prompt;
  std::vector<int32_t> out;
  std::vector<double> prob(static_cast<size_t>(V));
  std::vector<int32_t> order(static_cast<size_t>(V));
  for (int64_t i = 0; i < options.max_tokens; ++i) {
    const int64_t T = std::min<int64_t>(int64_t(seq.size()), context);
    int32_t* window = seq.data() + (int64_t(seq.size()) - T);
    net.forward(Tensor(window, {1, T}, DType::kI32), Tensor{});
    const float* logits = net.logits().f32() + (T - 1) * V;   // the last position
    int32_t next = 0;
    if (options.temperature <= 0.0) {
      next = int32_t(std::max_element(logits, logits + V) - logits);
    } else {
      // Candidates: all tokens, or the top k by logit (ties by id, so the draw is exact).
      std::iota(order.begin(), order.end(), 0);
      int64_t k = V;
      if (options.top_k > 0 && options.top_k < V) {
        k = options.top_k;
        std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
          return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
        });
      }
      double top = -INFINITY;
      for (int64_t j = 0; j < k; ++j) top = std::max(top, double(logits[order[size_t(j)]]));
      double sum = 0.0;
      for (int64_t j = 0; j < k; ++j) {
        prob[size_t(j)] = std::exp((double(logits[order[size_t(j)]]) - top) / options.temperature);
        sum += prob[size_t(j)];
      }
      double u = rng.uniform() * sum;
      int64_t pick = k - 1;
      for (int64_t j = 0; j < k; ++j) {
        u -= prob[size_t(j)];
        if (u < 0.0) {
          pick = j;
          break;
        }
      }
      next = order[size_t(pick)];
    }
    if (options.stop_token && next == *options.stop_token) break;
    seq.push_back(next);
    out.push_back(next);
    if (on_token) on_token(next);
  }
  return out;
}

}  // namespace loom
