#pragma once
// Internal to models/embedding_eval*.cpp: unit-length copies of a table's first rows and
// a (case-folded) word -> row index, plus the top-k helper shared by the queries.
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "io/export.h"

namespace loom::detail {

class UnitIndex {
 public:
  // Rows [0, rows) of `table` (rows <= 0 or > size: all), each scaled to unit length (zero
  // rows stay zero). Words are folded when `fold`; the first row of a folded word wins.
  UnitIndex(const EmbeddingTable& table, int64_t rows, bool fold);

  int64_t find(std::string_view word) const;   // row, or -1
  const float* unit() const { return unit_.data(); }
  const float* row(int64_t i) const { return unit_.data() + i * dim_; }
  int64_t rows() const { return rows_; }
  int64_t dim() const { return dim_; }

 private:
  bool fold_;
  int64_t rows_;
  int64_t dim_;
  std::vector<float> unit_;                          // (rows, dim)
  std::unordered_map<std::string, int64_t> index_;   // folded word -> row
};

// Rows of the k highest scores[i] over i not in `exclude`, best first (ties: lower row).
std::vector<int64_t> top_k(const float* scores, int64_t n, int k, std::initializer_list<int64_t> exclude);

}  // namespace loom::detail
