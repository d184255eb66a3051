// BertExamples across processes (np 2 and 3): every rank builds the table on its own - from
// the same stream cut into rank + 1 shard files, as the token stage's part files differ with
// the world size - and takes its rank_slice of each global batch. The examples the ranks
// produce, summed into one array (each slot written by one rank), equal those every rank
// computes alone for the whole range: the global order, pairing and masking depend on the
// seed and the global index only.
#include <gtest/gtest.h>

#include <cstdint>
#include <vector>

#include "core/tensor.h"
#include "dist/mpi_communicator.h"
#include "io/bert_examples.h"
#include "tests/io/bert_corpus.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

TEST(BertExamplesMpi, RankSlicesOfEveryGlobalBatchAreTheSingleProcessExamples) {
  MpiCommunicator& world = MpiCommunicator::world();
  const int rank = world.rank(), size = world.size();
  test::TempDir dir;
  const test::Corpus c = test::make_corpus(200, 17, 10, 30);
  auto stream = test::write_stream(dir, c.tokens, rank + 1);
  const BertSplits splits = split_bert_examples(stream, 0.05, test::options(64, 77));
  const BertExamples& train = splits.train;

  // The tables agree: every rank's hash of its pairs is rank 0's.
  uint64_t table_hash = 1469598103934665603ull;
  for (int64_t i = 0; i < train.examples_per_epoch(); ++i) {
    const BertPair p = train.pair(i);
    for (uint64_t v : {p.a_begin, p.a_end, p.b_begin, p.b_end, uint64_t{p.random_next}})
      table_hash = (table_hash ^ v) * 1099511628211ull;
  }
  std::vector<uint64_t> hashes(static_cast<size_t>(size));
  world.allgather(Tensor::of(&table_hash, 1), Tensor::of(hashes.data(), size));
  for (int r = 0; r < size; ++r) EXPECT_EQ(hashes[r], hashes[0]) << "rank " << r << "'s table";

  // 3 epochs and a bit, in global batches of 13 (uneven slices at np 2 and 3).
  constexpr int64_t kBatch = 13;
  const int64_t steps = (3 * train.examples_per_epoch()) / kBatch + 2;
  std::vector<uint64_t> mine(static_cast<size_t>(steps * kBatch), 0), alone(mine.size());
  BertExample e(train.options());
  for (int64_t step = 0; step < steps; ++step) {
    const WindowSlice s = rank_slice(step, kBatch, rank, size);
    for (int64_t k = 0; k < s.count; ++k) {
      train.example(s.begin + k, e);
      mine[static_cast<size_t>(s.begin + k)] = test::example_hash(e);
    }
  }
  world.allreduce(Tensor::of(mine.data(), static_cast<int64_t>(mine.size())), ReduceOp::kSum);
  for (size_t g = 0; g < alone.size(); ++g) {
    train.example(static_cast<int64_t>(g), e);
    alone[g] = test::example_hash(e);
  }
  for (size_t g = 0; g < alone.size(); ++g)
    ASSERT_EQ(mine[g], alone[g]) << "global example " << g << " on rank " << rank << " of " << size;
}

}  // namespace
}  // namespace loom
