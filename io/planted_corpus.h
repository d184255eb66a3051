#pragma once
// A synthetic corpus with planted analogies, for the README's main job and for tests of
// the embedding models (GloVe, word2vec).
//
// Four relations - country : capital, male : female, singular : plural, positive :
// comparative - each of 12 word pairs (a_i, b_i). A sentence (one per line) is one target
// word with 7 context words (pseudo-words like "lomix") drawn from a log-linear model
// (Note [Planted latent model] in planted_corpus.cpp): log p(context | a_i) is linear in
// topic_i + role_a, log p(context | b_i) in topic_i + role_b. So b_i - a_i + a_j ~ b_j
// for every (i, j) of a relation: the questions file lists all of them (4 x 132).
// Words are lower-case ASCII.
#include <cstdint>
#include <string>

namespace loom {

struct PlantedCorpusInfo {
  int64_t sentences = 0;
  int64_t tokens = 0;
  int64_t questions = 0;   // lines of the questions file, section headers excluded
};

// Writes `sentences` lines to `path` (PATH.tmp, then renamed), drawn from
// Rng(seed, 0, kData), and the matching questions to `questions_path` in the
// questions-words format (": section", then "a b c d"). Throws IoError naming the path.
PlantedCorpusInfo generate_planted_corpus(const std::string& path, const std::string& questions_path,
                                          uint64_t seed, int64_t sentences);

// Only the questions (they do not depend on the seed). Returns their count.
int64_t write_planted_questions(const std::string& questions_path);

}  // namespace loom
