#pragma once
// Small byte-level BPE vocabularies built in code for the tokenizer tests.
#include <string>
#include <utility>
#include <vector>

#include "io/bpe_files.h"

namespace loom::test {

// Id 0: <|endoftext|>; ids 1..256: the bytes 0..255; then one token per merge (in order)
// unless the merge makes a token that exists already. Merges are given as raw bytes.
inline BpeVocab make_bpe_vocab(const std::vector<std::pair<std::string, std::string>>& merges) {
  BpeVocab v;
  v.tokens.emplace_back(kEndOfText);
  v.special.push_back(1);
  for (int b = 0; b < 256; ++b) {
    v.tokens.emplace_back(1, static_cast<char>(b));
    v.special.push_back(0);
  }
  auto id_of = [&](const std::string& t) -> uint32_t {
    for (uint32_t i = 1; i < v.tokens.size(); ++i)
      if (v.tokens[i] == t) return i;
    v.tokens.push_back(t);
    v.special.push_back(0);
    return static_cast<uint32_t>(v.tokens.size() - 1);
  };
  for (const auto& [l, r] : merges) {
    const uint32_t left = id_of(l), right = id_of(r);
    v.merges.push_back({left, right, id_of(l + r)});
  }
  return v;
}

}  // namespace loom::test
