// The planted-analogy corpus (planted_corpus.h).
#include "io/planted_corpus.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string_view>
#include <vector>

#include "core/error.h"
#include "core/rng.h"

namespace loom {

namespace {

constexpr int kPairs = 12;

struct Relation {
  const char* section;                        // questions-words section name
  std::array<const char*, kPairs> a, b;       // the pairs (a_i, b_i)
};

const std::array<Relation, 4> kRelations = {{
    {"capital-common-countries",
     {"france", "germany", "italy", "spain", "japan", "china", "russia", "egypt", "greece",
      "poland", "canada", "kenya"},
     {"paris", "berlin", "rome", "madrid", "tokyo", "beijing", "moscow", "cairo", "athens",
      "warsaw", "ottawa", "nairobi"}},
    {"family",
     {"king", "man", "boy", "father", "son", "brother", "uncle", "husband", "prince", "nephew",
      "actor", "groom"},
     {"queen", "woman", "girl", "mother", "daughter", "sister", "aunt", "wife", "princess",
      "niece", "actress", "bride"}},
    {"gram3-comparative",
     {"big", "small", "fast", "slow", "tall", "short", "old", "young", "strong", "weak",
      "cold", "warm"},
     {"bigger", "smaller", "faster", "slower", "taller", "shorter", "older", "younger",
      "stronger", "weaker", "colder", "warmer"}},
    {"gram8-plural",
     {"cat", "dog", "car", "house", "tree", "bird", "book", "apple", "river", "horse", "table",
      "flower"},
     {"cats", "dogs", "cars", "houses", "trees", "birds", "books", "apples", "rivers", "horses",
      "tables", "flowers"}},
}};

constexpr int kLatent = 12;          // k: dimension of the planted latent space
constexpr int kContextWords = 120;   // |C|: pseudo-words the targets are seen with
constexpr int kPerSentence = 7;      // context words drawn per sentence
constexpr double kContextScale = 0.3;

// Pronounceable pseudo-word number `index`: two syllables (onset, vowel) read as
// mixed-radix digits, so distinct for index < 3600; the "x" suffix keeps them apart from
// the real words.
std::string context_word(int index) {
  static constexpr std::array<const char*, 10> kOnset = {"v", "l", "m", "t", "r", "s", "k", "d", "n", "p"};
  static constexpr std::array<const char*, 6> kVowel = {"a", "e", "i", "o", "u", "y"};
  std::string w;
  int x = index;
  for (int s = 0; s < 2; ++s) {
    w += kOnset[static_cast<size_t>(x % 10)];
    x /= 10;
    w += kVowel[static_cast<size_t>(x % 6)];
    x /= 6;
  }
  return w + "x";
}

// Note [Planted latent model]
// Each pair (relation R, i) has a topic t_Ri and each side s of a relation a role r_Rs,
// both standard normal in R^k; each context word c has e_c ~ N(0, kContextScale^2) in
// R^k. A sentence about the target word (R, i, s) draws its context words from
// p(c) ~ exp((t_Ri + r_Rs) . e_c), so log X(target, c) is linear in t_Ri + r_Rs, the form
// GloVe fits, and every context word co-occurs with every target (a dense block): the
// model has to place b_i - a_i = r_Rb - r_Ra for all i.
class PlantedModel {
 public:
  explicit PlantedModel(uint64_t seed) {
    Rng rng(seed, 1, RngPurpose::kData);
    std::vector<double> topic(kRelations.size() * kPairs * kLatent), role(kRelations.size() * 2 * kLatent);
    std::vector<double> context(static_cast<size_t>(kContextWords * kLatent));
    for (double& v : topic) v = rng.normal();
    for (double& v : role) v = rng.normal();
    for (double& v : context) v = kContextScale * rng.normal();
    for (size_t t = 0; t < kRelations.size() * kPairs * 2; ++t) {
      const size_t rel = t / (kPairs * 2), pair = (t / 2) % kPairs, side = t % 2;
      const double* tv = topic.data() + (rel * kPairs + pair) * kLatent;
      const double* rv = role.data() + (rel * 2 + side) * kLatent;
      std::vector<double>& cdf = cdf_.emplace_back(kContextWords);
      double total = 0;
      for (int c = 0; c < kContextWords; ++c) {
        double logit = 0;
        for (int k = 0; k < kLatent; ++k) logit += (tv[k] + rv[k]) * context[static_cast<size_t>(c * kLatent + k)];
        cdf[static_cast<size_t>(c)] = total += std::exp(logit);
      }
      for (double& v : cdf) v /= total;
    }
  }
  // A context word for target number `target` = (rel * kPairs + pair) * 2 + side.
  int draw(size_t target, Rng& rng) const {
    const std::vector<double>& cdf = cdf_[target];
    const double u = rng.uniform();
    return static_cast<int>(std::upper_bound(cdf.begin(), cdf.end() - 1, u) - cdf.begin());
  }

 private:
  std::vector<std::vector<double>> cdf_;   // (targets, |C|)
};

// One sentence: the target word and kPerSentence context words, shuffled.
std::string make_sentence(const PlantedModel& model, Rng& rng) {
  const uint64_t rel = rng.below(kRelations.size());
  const uint64_t pair = rng.below(kPairs);
  const uint64_t side = rng.below(2);
  const Relation& r = kRelations[rel];
  std::array<std::string, kPerSentence + 1> words;
  words[0] = side == 1 ? r.b[pair] : r.a[pair];
  for (size_t k = 1; k < words.size(); ++k)
    words[k] = context_word(model.draw((rel * kPairs + pair) * 2 + side, rng));
  for (size_t k = words.size() - 1; k > 0; --k) std::swap(words[k], words[rng.below(k + 1)]);
  std::string line;
  for (const std::string& w : words) line += (line.empty() ? "" : " ") + w;
  return line + "\n";
}

void write_or_throw(std::FILE* f, std::string_view text, const std::string& path) {
  if (std::fwrite(text.data(), 1, text.size(), f) != text.size())
    throw IoError(path + ": write failed: " + std::strerror(errno));
}

void close_and_rename(std::FILE* f, const std::string& tmp, const std::string& path) {
  if (std::fclose(f) != 0) throw IoError(tmp + ": close failed: " + std::strerror(errno));
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw IoError(path + ": rename from " + tmp + " failed: " + std::strerror(errno));
}

std::FILE* open_tmp(const std::string& tmp) {
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) throw IoError(tmp + ": cannot create: " + std::strerror(errno));
  return f;
}

}  // namespace

int64_t write_planted_questions(const std::string& questions_path) {
  const std::string tmp = questions_path + ".tmp";
  std::FILE* f = open_tmp(tmp);
  int64_t count = 0;
  for (const Relation& r : kRelations) {
    write_or_throw(f, std::string(": ") + r.section + "\n", tmp);
    for (int i = 0; i < kPairs; ++i) {
      for (int j = 0; j < kPairs; ++j) {
        if (i == j) continue;
        write_or_throw(f, std::string(r.a[i]) + " " + r.b[i] + " " + r.a[j] + " " + r.b[j] + "\n", tmp);
        ++count;
      }
    }
  }
  close_and_rename(f, tmp, questions_path);
  return count;
}

PlantedCorpusInfo generate_planted_corpus(const std::string& path, const std::string& questions_path,
                                          uint64_t seed, int64_t sentences) {
  LOOM_CHECK(sentences >= 1, ConfigError, "planted corpus: sentences must be >= 1");
  PlantedCorpusInfo info;
  const std::string tmp = path + ".tmp";
  std::FILE* f = open_tmp(tmp);
  const PlantedModel model(seed);
  Rng rng(seed, 0, RngPurpose::kData);
  for (int64_t s = 0; s < sentences; ++s) write_or_throw(f, make_sentence(model, rng), tmp);
  close_and_rename(f, tmp, path);
  info.sentences = sentences;
  info.tokens = sentences * (kPerSentence + 1);
  info.questions = write_planted_questions(questions_path);
  return info;
}

}  // namespace loom
