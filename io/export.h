#pragma once
// Word vectors in the files other tools read and write:
//   glove         GloVe text: "word v1 ... vD\n" per word, no header
//   word2vec      word2vec text: header "N D\n", then "word v1 ... vD\n" per word
//   word2vec-bin  word2vec binary: header "N D\n", then per word "word " + D little-endian
//                 float32 + "\n" (what gensim's load_word2vec_format(binary=True) reads)
// Text values are printed in the shortest form that reads back to the same float32, so
// every format round-trips bit-exactly. Writers go to PATH.tmp, fsync, then rename.
// Vectors are written by one rank (rank 0); nothing here is collective.
//
// Readers detect the format from the content (read_vectors): a first line of two
// integers is a word2vec header, and the first record decides text (D numbers up to the
// line end) or binary; anything else is GloVe text. Errors are DataError naming
// path:line (text) or path:byte (binary).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace loom {

enum class VectorFormat { kGloveText, kWord2VecText, kWord2VecBinary };

const char* vector_format_name(VectorFormat format);      // "glove" | "word2vec" | "word2vec-bin"
VectorFormat parse_vector_format(std::string_view name);  // ConfigError for anything else

// A vector table as read from a file: words in file order (for loom's exports: vocabulary
// order = frequency order) and their vectors.
struct EmbeddingTable {
  std::vector<std::string> words;   // (N,)
  std::vector<float> vectors;       // (N, dim) row-major
  int64_t dim = 0;

  int64_t size() const { return static_cast<int64_t>(words.size()); }
  const float* row(int64_t i) const { return vectors.data() + i * dim; }
};

// Writes words[i] with vectors (N, dim) row-major. Words must be non-empty and free of
// whitespace (DataError naming the word otherwise); IoError naming the path on I/O failure.
void write_vectors(const std::string& path, VectorFormat format, const std::vector<std::string>& words,
                   const float* vectors, int64_t dim);
inline void write_vectors(const std::string& path, VectorFormat format, const EmbeddingTable& table) {
  write_vectors(path, format, table.words, table.vectors.data(), table.dim);
}

// Reads any of the three formats; `detected` (optional) receives the format found.
EmbeddingTable read_vectors(const std::string& path, VectorFormat* detected = nullptr);

}  // namespace loom
