#pragma once
// The Huffman tree of hierarchical softmax (Morin & Bengio 2005; word2vec's CreateBinaryTree):
// V leaves weighted by the word counts, V - 1 inner nodes. Frequent words get short codes.
//
// Inner nodes are numbered 0 .. V-2 in the order they are created (the root is V-2), and
// they index the rows of `syn1` (V-1, D). For word w, its path from the root is
//   point[offset[w] + j]  inner node at depth j (point[offset[w]] is the root)
//   code [offset[w] + j]  the branch taken there: 0 or 1
// with length offset[w+1] - offset[w]. Hierarchical softmax predicts w with
//   p(w | h) = prod_j sigma((1 - 2 code_j) h . syn1[point_j])
// (word2vec's convention: label 1 - code). With V = 1 there are no inner nodes and every
// path is empty.
//
// Ties between equal weights are broken by node id (leaves 0..V-1, then inner nodes in
// creation order), so the tree depends on the counts alone.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace loom {

struct HuffmanTree {
  std::vector<uint8_t> code;     // (sum of code lengths,)
  std::vector<int32_t> point;    // (sum of code lengths,) inner node ids in [0, V-2]
  std::vector<int64_t> offset;   // (V+1,)

  int64_t size() const { return static_cast<int64_t>(offset.size()) - 1; }
  int length(int64_t w) const { return static_cast<int>(offset[static_cast<size_t>(w) + 1] - offset[static_cast<size_t>(w)]); }
  int64_t max_length() const;
};

// Builds the tree over `counts` (V,), every count >= 1. O(V log V).
HuffmanTree build_huffman(const std::vector<int64_t>& counts);

}  // namespace loom
