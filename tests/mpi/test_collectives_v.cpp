// allgather(v) and alltoallv on the MPI world: uneven counts with zeros, rank-dependent
// alltoallv counts, in-place allgatherv, every dtype (bf16/f16 as raw bits), and the
// chunked fallbacks that handle counts above INT_MAX (forced with a tiny chunk limit).
#include <gtest/gtest.h>

#include <chrono>
#include <numeric>

#include "tests/mpi/collective_checks.h"

namespace loom::test {
namespace {

MpiCommunicator& world() {
  MpiCommunicator& w = MpiCommunicator::world();
  w.set_default_timeout(std::chrono::seconds(120));
  return w;
}

// Uneven, the same on every rank, with zeros (rank 1 contributes nothing).
std::vector<int64_t> gather_counts(int size, int64_t scale) {
  std::vector<int64_t> counts(static_cast<size_t>(size));
  for (int q = 0; q < size; ++q) counts[static_cast<size_t>(q)] = q == 1 ? 0 : (2 * q + 1) * scale + q;
  return counts;
}

template <class T>
void check_allgatherv(int64_t scale, bool in_place) {
  MpiCommunicator& w = world();
  std::vector<int64_t> counts = gather_counts(w.size(), scale);
  std::vector<int64_t> offsets(counts.size() + 1, 0);
  std::partial_sum(counts.begin(), counts.end(), offsets.begin() + 1);
  std::vector<T> all(static_cast<size_t>(offsets.back()), T(0));
  std::vector<T> expected(all.size());
  for (int q = 0; q < w.size(); ++q)
    for (int64_t j = 0; j < counts[static_cast<size_t>(q)]; ++j)
      expected[static_cast<size_t>(offsets[static_cast<size_t>(q)] + j)] = static_cast<T>(value_at(q, j));
  const size_t me = static_cast<size_t>(w.rank());
  std::vector<T> mine(static_cast<size_t>(counts[me]));
  for (size_t j = 0; j < mine.size(); ++j) mine[j] = static_cast<T>(value_at(w.rank(), static_cast<int64_t>(j)));
  Tensor all_t = tensor_of(all);
  Tensor mine_t = tensor_of(mine);
  if (in_place) {
    std::copy(mine.begin(), mine.end(), all.begin() + offsets[me]);
    mine_t = all_t.slice(offsets[me], counts[me]);
  }
  w.allgatherv(mine_t, all_t, counts);
  expect_equal(all, expected, "allgatherv scale=" + std::to_string(scale) +
                                  (in_place ? " in place" : ""));
}

template <class T>
class VCollectives : public ::testing::Test {};
using AllTypes = ::testing::Types<float, double, int32_t, int64_t, uint8_t, uint64_t>;
TYPED_TEST_SUITE(VCollectives, AllTypes);

TYPED_TEST(VCollectives, AllgathervUnevenWithZeros) {
  for (int64_t scale : {0, 1, 333, 300000}) check_allgatherv<TypeParam>(scale, false);
  check_allgatherv<TypeParam>(333, true);
}

TYPED_TEST(VCollectives, AllgathervSplitPath) {
  ChunkLimit limit(4);  // every count and the total exceed it: chunked broadcasts
  for (int64_t scale : {0, 1, 333}) check_allgatherv<TypeParam>(scale, false);
  check_allgatherv<TypeParam>(333, true);
}

TYPED_TEST(VCollectives, AllgatherEqualCounts) {
  using T = TypeParam;
  MpiCommunicator& w = world();
  std::vector<T> mine(37);
  for (size_t j = 0; j < mine.size(); ++j) mine[j] = static_cast<T>(value_at(w.rank(), static_cast<int64_t>(j)));
  std::vector<T> all(mine.size() * static_cast<size_t>(w.size()));
  w.allgather(tensor_of(mine), tensor_of(all));
  std::vector<T> expected(all.size());
  for (size_t i = 0; i < expected.size(); ++i)
    expected[i] = static_cast<T>(value_at(static_cast<int>(i / 37), static_cast<int64_t>(i % 37)));
  expect_equal(all, expected, "allgather");
}

// Rank r sends (r + 2q) % 4 * scale elements to rank q; element j of that message is
// r*1000 + q*100 + j % 50 (every value fits u8 after % 251).
int64_t a2a_count(int from, int to, int64_t scale) { return ((from + 2 * to) % 4) * scale; }
int64_t a2a_value(int from, int to, int64_t j) { return (from * 1000 + to * 100 + j % 50) % 251; }

template <class T>
void check_alltoallv(int64_t scale) {
  MpiCommunicator& w = world();
  const int me = w.rank();
  std::vector<int64_t> send_counts, recv_counts;
  for (int q = 0; q < w.size(); ++q) {
    send_counts.push_back(a2a_count(me, q, scale));
    recv_counts.push_back(a2a_count(q, me, scale));
  }
  std::vector<T> send, expected;
  for (int q = 0; q < w.size(); ++q)
    for (int64_t j = 0; j < send_counts[static_cast<size_t>(q)]; ++j) send.push_back(static_cast<T>(a2a_value(me, q, j)));
  for (int q = 0; q < w.size(); ++q)
    for (int64_t j = 0; j < recv_counts[static_cast<size_t>(q)]; ++j) expected.push_back(static_cast<T>(a2a_value(q, me, j)));
  std::vector<T> recv(expected.size(), T(0));
  w.alltoallv(tensor_of(send), send_counts, tensor_of(recv), recv_counts);
  expect_equal(recv, expected, "alltoallv scale=" + std::to_string(scale));
}

TYPED_TEST(VCollectives, AlltoallvRankDependentCounts) {
  for (int64_t scale : {0, 1, 17, 100000}) check_alltoallv<TypeParam>(scale);
}

TYPED_TEST(VCollectives, AlltoallvSplitPath) {
  ChunkLimit limit(5);  // pairwise chunked point-to-point rounds
  for (int64_t scale : {0, 1, 17}) check_alltoallv<TypeParam>(scale);
}

TEST(VCollectivesHalf, GathersMoveBf16Bits) {
  MpiCommunicator& w = world();
  std::vector<int64_t> counts = gather_counts(w.size(), 5);
  int64_t total = std::accumulate(counts.begin(), counts.end(), int64_t{0});
  std::vector<uint16_t> mine(static_cast<size_t>(counts[static_cast<size_t>(w.rank())]),
                             static_cast<uint16_t>(0x4000 + w.rank()));
  std::vector<uint16_t> all(static_cast<size_t>(total), 0);
  w.allgatherv(Tensor(mine.data(), {static_cast<int64_t>(mine.size())}, DType::kBF16),
               Tensor(all.data(), {total}, DType::kBF16), counts);
  std::vector<uint16_t> expected;
  for (int q = 0; q < w.size(); ++q)
    expected.insert(expected.end(), static_cast<size_t>(counts[static_cast<size_t>(q)]),
                    static_cast<uint16_t>(0x4000 + q));
  expect_equal(all, expected, "allgatherv bf16");

  std::vector<int64_t> ones(static_cast<size_t>(w.size()), 1);
  std::vector<uint16_t> send(static_cast<size_t>(w.size()));
  for (int q = 0; q < w.size(); ++q) send[static_cast<size_t>(q)] = static_cast<uint16_t>(w.rank() * 16 + q);
  std::vector<uint16_t> recv(send.size(), 0);
  int64_t n = w.size();
  w.alltoallv(Tensor(send.data(), {n}, DType::kF16), ones, Tensor(recv.data(), {n}, DType::kF16), ones);
  std::vector<uint16_t> want(send.size());
  for (int q = 0; q < w.size(); ++q) want[static_cast<size_t>(q)] = static_cast<uint16_t>(q * 16 + w.rank());
  expect_equal(recv, want, "alltoallv f16");
}

TEST(VCollectivesErrors, MismatchedCountsAreErrors) {
  MpiCommunicator& w = world();
  std::vector<float> mine(3), all(3);
  std::vector<int64_t> too_few(static_cast<size_t>(w.size()) + 1, 1);
  EXPECT_THROW(w.allgatherv(tensor_of(mine), tensor_of(all), too_few), CommError);
  std::vector<int64_t> negative(static_cast<size_t>(w.size()), -1);
  EXPECT_THROW(w.allgatherv(tensor_of(mine), tensor_of(all), negative), CommError);
  std::vector<int64_t> counts(static_cast<size_t>(w.size()), 3);
  std::vector<double> other(3 * static_cast<size_t>(w.size()));
  EXPECT_THROW(w.allgatherv(tensor_of(mine), tensor_of(other), counts), CommError);
  std::vector<float> short_send(1);  // the counts add up to 3 * size
  std::vector<float> recv(3 * static_cast<size_t>(w.size()));
  EXPECT_THROW(w.alltoallv(tensor_of(short_send), counts, tensor_of(recv), counts), CommError);
}

}  // namespace
}  // namespace loom::test
