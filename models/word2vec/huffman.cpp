// Huffman tree construction (huffman.h).
#include "models/word2vec/huffman.h"

#include <algorithm>
#include <queue>
#include <utility>

#include "core/error.h"

namespace loom {

int64_t HuffmanTree::max_length() const {
  int64_t m = 0;
  for (int64_t w = 0; w < size(); ++w) m = std::max<int64_t>(m, length(w));
  return m;
}

// Nodes 0 .. V-1 are the leaves (words), V .. 2V-2 the inner nodes in creation order. A
// min-heap over (weight, node) merges the two lightest nodes; the first popped becomes the
// 0 branch, the second the 1 branch (word2vec assigns code 1 to the heavier of the pair).
HuffmanTree build_huffman(const std::vector<int64_t>& counts) {
  const int64_t V = static_cast<int64_t>(counts.size());
  LOOM_CHECK(V >= 1, DataError, "huffman: the vocabulary is empty");
  for (int64_t c : counts) LOOM_ASSERT(c >= 1, "huffman: counts must be >= 1");
  HuffmanTree t;
  t.offset.assign(static_cast<size_t>(V) + 1, 0);
  if (V == 1) return t;
  std::vector<int64_t> parent(static_cast<size_t>(2 * V - 1), -1);   // (2V-1,)
  std::vector<uint8_t> branch(static_cast<size_t>(2 * V - 1), 0);    // (2V-1,)
  using Item = std::pair<int64_t, int64_t>;                          // (weight, node)
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> heap;
  for (int64_t w = 0; w < V; ++w) heap.push({counts[static_cast<size_t>(w)], w});
  for (int64_t next = V; next < 2 * V - 1; ++next) {
    const Item a = heap.top();
    heap.pop();
    const Item b = heap.top();
    heap.pop();
    parent[static_cast<size_t>(a.second)] = next;
    parent[static_cast<size_t>(b.second)] = next;
    branch[static_cast<size_t>(b.second)] = 1;
    heap.push({a.first + b.first, next});
  }
  // Paths: walk each leaf up to the root, then store root-first.
  std::vector<int32_t> up;
  std::vector<uint8_t> up_code;
  for (int64_t w = 0; w < V; ++w) {
    up.clear();
    up_code.clear();
    for (int64_t n = w; parent[static_cast<size_t>(n)] >= 0; n = parent[static_cast<size_t>(n)]) {
      up_code.push_back(branch[static_cast<size_t>(n)]);
      up.push_back(static_cast<int32_t>(parent[static_cast<size_t>(n)] - V));
    }
    t.offset[static_cast<size_t>(w) + 1] = t.offset[static_cast<size_t>(w)] + static_cast<int64_t>(up.size());
    t.point.insert(t.point.end(), up.rbegin(), up.rend());
    t.code.insert(t.code.end(), up_code.rbegin(), up_code.rend());
  }
  return t;
}

}  // namespace loom
