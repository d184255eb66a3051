// Vocabulary and co-occurrence against a brute-force count, at world sizes 1, 2 and 3
// (ctest runs this binary as a singleton and under mpirun -np 2 / -np 3): every vocab
// entry and every co-occurrence value equal, symmetric and not, with a budget that forces
// spills and with a large one.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <numeric>
#include <random>

#include "core/error.h"
#include "core/tensor.h"
#include "dist/mpi_communicator.h"
#include "models/glove/cooccur_build.h"
#include "io/tokenize.h"
#include "io/vocab.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

Communicator& world() { return MpiCommunicator::world(); }

// A corpus every rank can regenerate: Zipf-like words, short and empty lines, one long line.
std::string make_text(int seed, int lines) {
  std::mt19937 gen(static_cast<unsigned>(seed));
  std::string s;
  for (int l = 0; l < lines; ++l) {
    int n = l == lines / 2 ? 3000 : static_cast<int>(gen() % 25);
    for (int i = 0; i < n; ++i) {
      unsigned r = gen() % 1000;
      unsigned w = static_cast<unsigned>(60.0 / (1.0 + r / 8.0));
      s += (i ? " " : "") + std::string(gen() % 5 == 0 ? "W" : "w") + std::to_string(w);
    }
    s += (l % 3 == 0) ? "\r\n" : "\n";
  }
  return s;
}

struct Shared {
  std::string dir;
  std::vector<std::string> texts;
};

// Rank 0 writes the corpus into its temp dir; the path is broadcast.
Shared& shared() {
  static test::TempDir tmp;
  static Shared s = [] {
    Shared out;
    char path[512] = {};
    std::snprintf(path, sizeof(path), "%s", tmp.path().c_str());
    world().broadcast(Tensor::of(reinterpret_cast<uint8_t*>(path), sizeof(path)), 0);
    out.dir = path;
    out.texts = {make_text(1, 300), make_text(2, 120)};
    if (world().rank() == 0) {
      test::write_file(out.dir + "/c1.txt", out.texts[0]);
      test::write_file(out.dir + "/c2.txt", out.texts[1]);
    }
    world().barrier();
    return out;
  }();
  return s;
}

CorpusOptions corpus_options() {
  CorpusOptions o;
  o.paths = {shared().dir + "/c*.txt"};
  o.lowercase = true;
  o.read_buffer_bytes = 512;
  o.max_line_bytes = 200;   // the long line is split between ranks
  return o;
}

std::vector<std::vector<std::string>> lines_of(const std::string& text) {
  std::string low = text;
  std::transform(low.begin(), low.end(), low.begin(), [](char c) { return c == 'W' ? 'w' : c; });
  std::vector<std::vector<std::string>> lines(1);
  for_each_token(low, 0, [&](std::string_view t) { lines.back().emplace_back(t); },
                 [&] { lines.emplace_back(); });
  return lines;
}

TEST(Vocab, EqualsBruteForceCount) {
  VocabOptions vo;
  vo.min_count = 3;
  Vocab v = build_vocab(world(), corpus_options(), vo);
  std::map<std::string, int64_t> counts;
  for (auto& text : shared().texts)
    for (auto& line : lines_of(text))
      for (auto& t : line) ++counts[t];
  std::vector<std::pair<int64_t, std::string>> want;
  for (auto& [t, c] : counts)
    if (c >= 3) want.emplace_back(-c, t);
  std::sort(want.begin(), want.end());
  ASSERT_EQ(v.size(), static_cast<int32_t>(want.size()));
  for (int32_t i = 0; i < v.size(); ++i) {
    EXPECT_EQ(v.token(i), want[static_cast<size_t>(i)].second) << "id " << i;
    EXPECT_EQ(v.count(i), -want[static_cast<size_t>(i)].first) << "id " << i;
    EXPECT_EQ(v.find(v.token(i)), i);
  }
  vo.max_vocab = 10;
  Vocab top = build_vocab(world(), corpus_options(), vo);
  ASSERT_EQ(top.size(), 10);
  EXPECT_EQ(top.token(9), v.token(9));
  if (world().rank() == 0) {
    write_vocab_txt(v, shared().dir + "/vocab.txt");
    EXPECT_EQ(read_vocab_txt(shared().dir + "/vocab.txt"), v);
    write_vocab_h5(v, shared().dir + "/vocab.h5");
  }
}

// Brute force in the same fixed-point units (exact) and in plain double (close).
std::map<std::pair<int32_t, int32_t>, std::pair<uint64_t, double>> brute(const Vocab& v, int window,
                                                                         bool symmetric) {
  uint64_t lcm = 1;
  for (int d = 1; d <= window; ++d) lcm = std::lcm(lcm, static_cast<uint64_t>(d));
  std::map<std::pair<int32_t, int32_t>, std::pair<uint64_t, double>> m;
  for (auto& text : shared().texts)
    for (auto& line : lines_of(text)) {
      std::vector<int32_t> ids;
      for (auto& t : line)
        if (int32_t id = v.find(t); id >= 0) ids.push_back(id);
      for (size_t j = 0; j < ids.size(); ++j)
        for (size_t k = 1; k <= static_cast<size_t>(window) && k <= j; ++k) {
          auto add = [&](int32_t a, int32_t b) {
            auto& e = m[{a, b}];
            e.first += lcm / k;
            e.second += 1.0 / static_cast<double>(k);
          };
          add(ids[j - k], ids[j]);
          if (symmetric) add(ids[j], ids[j - k]);
        }
    }
  return m;
}

void check_cooccur(bool symmetric, double memory_gb) {
  VocabOptions vo;
  vo.min_count = 2;
  Vocab v = build_vocab(world(), corpus_options(), vo);
  CooccurOptions co;
  co.window = 5;
  co.symmetric = symmetric;
  co.memory_gb = memory_gb;
  std::string out = shared().dir;
  CooccurResult res = build_cooccurrence(world(), v, corpus_options(), co, out);
  if (memory_gb < 1e-3) {
    EXPECT_GT(res.stats.spills, 0);
  }
  for (auto& e : res.entries) ASSERT_EQ(e.row % world().size(), world().rank());
  EXPECT_EQ(read_cooccur_h5(res.h5_path).size(), res.entries.size());
  // Gather every partition.
  int64_t mine = static_cast<int64_t>(res.entries.size() * 2);
  std::vector<int64_t> counts(static_cast<size_t>(world().size()));
  world().allgather(Tensor::of(&mine, 1), Tensor::of(counts.data(), world().size()));
  int64_t total = std::accumulate(counts.begin(), counts.end(), int64_t{0});
  std::vector<uint64_t> all(static_cast<size_t>(total));
  world().allgatherv(Tensor::of(reinterpret_cast<uint64_t*>(res.entries.data()), mine),
                     Tensor::of(all.data(), total), counts);
  auto want = brute(v, co.window, symmetric);
  ASSERT_EQ(static_cast<size_t>(total / 2), want.size());
  ASSERT_EQ(res.stats.nnz, static_cast<int64_t>(want.size()));
  uint64_t lcm = 60;   // lcm(1..5)
  const CooccurEntry* got = reinterpret_cast<const CooccurEntry*>(all.data());
  for (int64_t i = 0; i < total / 2; ++i) {
    auto it = want.find({got[i].row, got[i].col});
    ASSERT_NE(it, want.end()) << "entry " << i << " (" << got[i].row << "," << got[i].col << ")";
    EXPECT_EQ(got[i].value, static_cast<double>(it->second.first) / static_cast<double>(lcm))
        << "(" << got[i].row << "," << got[i].col << ") rank " << world().rank();
    EXPECT_NEAR(got[i].value, it->second.second, 1e-12 * std::max(1.0, it->second.second));  // naive sum
  }
  std::string bin = out + "/cooccurrence.bin";
  export_glove_cooccurrence(world(), res, bin);
  if (world().rank() == 0) {
    EXPECT_EQ(test::read_file(bin).size(), static_cast<size_t>(total / 2) * 16);
  }
}

TEST(Cooccur, SymmetricEqualsBruteForce) { check_cooccur(true, 1.0); }
TEST(Cooccur, LeftContextEqualsBruteForce) { check_cooccur(false, 1.0); }
TEST(Cooccur, SymmetricWithSpillsEqualsBruteForce) { check_cooccur(true, 1e-6); }
TEST(Cooccur, LeftContextWithSpillsEqualsBruteForce) { check_cooccur(false, 1e-6); }

// Counting threads split the shard further (Note [Counting threads] in io/cooccur_count.h);
// vocabulary, every entry, its value and the shuffled order must not change.
TEST(Cooccur, ThreadsGiveIdenticalResults) {
  VocabOptions vo;
  vo.min_count = 2;
  Vocab v = build_vocab(world(), corpus_options(), vo);
  for (int threads : {2, 3}) {
    vo.threads = threads;
    EXPECT_EQ(build_vocab(world(), corpus_options(), vo), v) << threads << " threads, rank " << world().rank();
  }
  for (bool symmetric : {true, false})
    for (double memory_gb : {1.0, 1e-6}) {
      CooccurOptions co;
      co.window = 5;
      co.symmetric = symmetric;
      co.memory_gb = memory_gb;
      CooccurResult one = build_cooccurrence(world(), v, corpus_options(), co, shared().dir);
      for (int threads : {2, 3}) {
        co.threads = threads;
        CooccurResult many = build_cooccurrence(world(), v, corpus_options(), co, shared().dir);
        EXPECT_EQ(many.stats.nnz, one.stats.nnz);
        EXPECT_EQ(many.stats.increments, one.stats.increments);
        // Written behind the shuffle (Note [Write behind the shuffle]): the file holds the result.
        std::vector<CooccurEntry> file = read_cooccur_h5(many.h5_path);
        ASSERT_EQ(file.size(), many.entries.size());
        EXPECT_EQ(std::memcmp(file.data(), many.entries.data(), file.size() * sizeof(CooccurEntry)), 0)
            << "rank " << world().rank();
        ASSERT_EQ(many.entries.size(), one.entries.size()) << threads << " threads, rank " << world().rank();
        for (size_t i = 0; i < one.entries.size(); ++i) {
          const CooccurEntry& a = one.entries[i];
          const CooccurEntry& b = many.entries[i];
          ASSERT_TRUE(a.row == b.row && a.col == b.col && a.value == b.value)
              << "entry " << i << ", rank " << world().rank() << ", " << threads << " threads, symmetric "
              << symmetric << ", memory_gb " << memory_gb << ": expected (" << a.row << "," << a.col << ") "
              << a.value << ", got (" << b.row << "," << b.col << ") " << b.value;
        }
      }
    }
}

// The counting threads come from run.threads, which has no upper bound of its own: too many
// is a ConfigError naming run.threads.
TEST(Cooccur, RejectsTooManyThreads) {
  CooccurOptions co;
  co.threads = 257;
  VocabOptions vo;
  vo.min_count = 2;
  Vocab v = build_vocab(world(), corpus_options(), vo);
  try {
    build_cooccurrence(world(), v, corpus_options(), co, shared().dir);
    ADD_FAILURE() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("run.threads"), std::string::npos) << e.what();
  }
  vo.threads = 257;
  try {
    build_vocab(world(), corpus_options(), vo);
    ADD_FAILURE() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("run.threads"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace loom
