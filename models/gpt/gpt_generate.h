#pragma once
// Text generation from a trained GptNet (`loom generate`): autoregressive sampling of one
// token at a time over the last n_positions tokens of the context, with temperature and
// top-k. No KV cache: each new token re-runs the context (the models loom trains on a CPU
// have contexts of a few hundred tokens, where that costs milliseconds).
#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "models/gpt/gpt_net.h"

namespace loom {

struct GenerateOptions {
  int64_t max_tokens = 200;
  double temperature = 1.0;    // 0 = greedy (the most likely token every time)
  int top_k = 0;               // sample among the k most likely tokens; 0 = all
  uint64_t seed = 1;
  std::optional<int32_t> stop_token;   // e.g. <|endoftext|>: ends generation (not emitted)
};

// Appends up to max_tokens sampled ids to `prompt` (which must not be empty) and returns
// the new ids; `on_token`, when given, sees each one as it is drawn. The net's arena must
// hold one sequence (micro_batch >= 1); the context is cut to the net's seq_len.
std::vector<int32_t> gpt_generate(GptNet& net, const std::vector<int32_t>& prompt,
                                  const GenerateOptions& options,
                                  const std::function<void(int32_t)>& on_token = {});

}  // namespace loom
