// Allreduce (blocking and async), broadcast and barrier on the MPI world, every dtype and
// op that applies, sizes 0, 1, odd and a few MiB, and the split path with a tiny chunk
// limit. Run as a singleton and under mpirun -np 2 and 3 (tests/mpi/mpi.cmake).
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <limits>
#include <memory>
#include <thread>

#include "tests/mpi/collective_checks.h"

namespace loom::test {
namespace {

MpiCommunicator& world() {
  MpiCommunicator& w = MpiCommunicator::world();
  w.set_default_timeout(std::chrono::seconds(120));  // a hang fails fast, not after 600 s
  return w;
}

constexpr int64_t kSizes[] = {0, 1, 1001, (1 << 20) + 3};  // the last: 4-8 MiB per rank

// Expected op(value_at(0..size-1, i)) for one element, computed in T like the collective.
template <class T>
T reduce_expected(ReduceOp op, int size, int64_t index) {
  T acc = static_cast<T>(value_at(0, index));
  for (int r = 1; r < size; ++r) {
    T v = static_cast<T>(value_at(r, index));
    if (op == ReduceOp::kMax) acc = std::max(acc, v);
    else if (op == ReduceOp::kMin) acc = std::min(acc, v);
    else acc = static_cast<T>(acc + v);
  }
  if (op == ReduceOp::kAvg) acc = static_cast<T>(acc * (T(1) / static_cast<T>(size)));
  return acc;
}

template <class T>
std::vector<T> local_data(int rank, int64_t n) {
  std::vector<T> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = static_cast<T>(value_at(rank, i));
  return v;
}

template <class T>
std::vector<T> expected_data(ReduceOp op, int size, int64_t n) {
  std::vector<T> v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[static_cast<size_t>(i)] = reduce_expected<T>(op, size, i);
  return v;
}

template <class T>
std::vector<ReduceOp> ops_for() {
  if (std::numeric_limits<T>::is_integer) return {ReduceOp::kSum, ReduceOp::kMax, ReduceOp::kMin};
  return {ReduceOp::kSum, ReduceOp::kAvg, ReduceOp::kMax, ReduceOp::kMin};
}

template <class T>
class Collectives : public ::testing::Test {};
using AllTypes = ::testing::Types<float, double, int32_t, int64_t, uint8_t, uint64_t>;
TYPED_TEST_SUITE(Collectives, AllTypes);

TYPED_TEST(Collectives, AllreduceEveryOpAndSize) {
  using T = TypeParam;
  MpiCommunicator& w = world();
  for (ReduceOp op : ops_for<T>()) {
    for (int64_t n : kSizes) {
      std::vector<T> buf = local_data<T>(w.rank(), n);
      w.allreduce(tensor_of(buf), op);
      expect_equal(buf, expected_data<T>(op, w.size(), n),
                   std::string("allreduce ") + reduce_op_name(op) + " n=" + std::to_string(n));
    }
  }
}

TYPED_TEST(Collectives, AllreduceSplitIntoTinyChunks) {
  using T = TypeParam;
  MpiCommunicator& w = world();
  ChunkLimit limit(7);
  for (ReduceOp op : ops_for<T>()) {
    for (int64_t n : {int64_t{1}, int64_t{7}, int64_t{8}, int64_t{1001}}) {
      std::vector<T> buf = local_data<T>(w.rank(), n);
      w.allreduce(tensor_of(buf), op);
      expect_equal(buf, expected_data<T>(op, w.size(), n),
                   std::string("split allreduce ") + reduce_op_name(op) + " n=" + std::to_string(n));
    }
  }
}

TYPED_TEST(Collectives, AsyncAllreduceSeveralOutstanding) {
  using T = TypeParam;
  MpiCommunicator& w = world();
  const int64_t sizes[] = {1001, 0, (1 << 18) + 1, 1};
  std::vector<std::vector<T>> bufs;
  for (int64_t n : sizes) bufs.push_back(local_data<T>(w.rank(), n));
  std::vector<std::unique_ptr<Work>> works;
  for (auto& b : bufs) works.push_back(w.allreduce_async(tensor_of(b), CollectiveOptions{ReduceOp::kSum, {}}));
  // Poll until every handle reports done (bounded), then wait() is a no-op.
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool all_done = false;
  while (!all_done && std::chrono::steady_clock::now() < give_up) {
    all_done = true;
    for (auto& work : works) all_done = work->done() && all_done;
    if (!all_done) std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  EXPECT_TRUE(all_done) << "async allreduce never reported done on rank " << w.rank();
  for (auto& work : works) work->wait();
  for (size_t k = 0; k < bufs.size(); ++k)
    expect_equal(bufs[k], expected_data<T>(ReduceOp::kSum, w.size(), sizes[k]),
                 "async allreduce #" + std::to_string(k));
}

TYPED_TEST(Collectives, AsyncAllreduceWaitAndSplit) {
  using T = TypeParam;
  MpiCommunicator& w = world();
  ChunkLimit limit(5);
  for (ReduceOp op : ops_for<T>()) {
    std::vector<T> a = local_data<T>(w.rank(), 1001);
    std::vector<T> b = local_data<T>(w.rank(), 12);
    auto wa = w.allreduce_async(tensor_of(a), CollectiveOptions{op, std::chrono::seconds(60)});
    auto wb = w.allreduce_async(tensor_of(b), CollectiveOptions{op, {}});
    wb->wait();
    wa->wait();
    wa->wait();  // a second wait is a no-op
    EXPECT_TRUE(wa->done());
    expect_equal(a, expected_data<T>(op, w.size(), 1001), std::string("split async a ") + reduce_op_name(op));
    expect_equal(b, expected_data<T>(op, w.size(), 12), std::string("split async b ") + reduce_op_name(op));
  }
}

TYPED_TEST(Collectives, BroadcastFromEveryRoot) {
  using T = TypeParam;
  MpiCommunicator& w = world();
  for (int root = 0; root < w.size(); ++root) {
    for (int64_t n : kSizes) {
      std::vector<T> buf = local_data<T>(w.rank(), n);
      w.broadcast(tensor_of(buf), root);
      expect_equal(buf, local_data<T>(root, n),
                   "broadcast root " + std::to_string(root) + " n=" + std::to_string(n));
    }
    ChunkLimit limit(3);
    std::vector<T> buf = local_data<T>(w.rank(), 100);
    w.broadcast(tensor_of(buf), root);
    expect_equal(buf, local_data<T>(root, 100), "split broadcast root " + std::to_string(root));
  }
}

TEST(CollectivesHalf, BroadcastMovesBf16AndF16Bits) {
  MpiCommunicator& w = world();
  for (DType dtype : {DType::kBF16, DType::kF16}) {
    std::vector<uint16_t> buf(1001);
    for (size_t i = 0; i < buf.size(); ++i)
      buf[i] = static_cast<uint16_t>(w.rank() == 0 ? 0x3f80 + i : 0xdead);
    w.broadcast(Tensor(buf.data(), {1001}, dtype), 0);
    std::vector<uint16_t> want(1001);
    for (size_t i = 0; i < want.size(); ++i) want[i] = static_cast<uint16_t>(0x3f80 + i);
    expect_equal(buf, want, std::string("broadcast ") + dtype_name(dtype));
  }
}

TEST(CollectivesErrors, AvgOnIntegersIsAnError) {
  MpiCommunicator& w = world();
  std::vector<int32_t> buf(4, 1);
  try {
    w.allreduce(tensor_of(buf), ReduceOp::kAvg);
    FAIL() << "avg on i32 did not throw";
  } catch (const CommError& e) {
    std::string what = e.what();
    EXPECT_NE(what.find("allreduce #"), std::string::npos) << what;
    EXPECT_NE(what.find("avg"), std::string::npos) << what;
    EXPECT_NE(what.find("on rank " + std::to_string(w.rank())), std::string::npos) << what;
  }
  std::vector<uint8_t> bytes(4, 1);
  EXPECT_THROW(w.allreduce(tensor_of(bytes), ReduceOp::kAvg), Error);
  EXPECT_THROW(w.allreduce_async(tensor_of(bytes), CollectiveOptions{ReduceOp::kAvg, {}}), Error);
}

TEST(CollectivesErrors, HalfReductionsAndBadArgumentsAreErrors) {
  MpiCommunicator& w = world();
  std::vector<uint16_t> half(8, 0);
  EXPECT_THROW(w.allreduce(Tensor(half.data(), {8}, DType::kBF16), ReduceOp::kSum), CommError);
  EXPECT_THROW(w.allreduce(Tensor(half.data(), {8}, DType::kF16), ReduceOp::kMax), CommError);
  std::vector<float> buf(8, 0.0f);
  EXPECT_THROW(w.broadcast(tensor_of(buf), w.size()), CommError);
  EXPECT_THROW(w.broadcast(tensor_of(buf), -1), CommError);
  // A device tensor is never dereferenced: the check comes first.
  Tensor on_gpu(buf.data(), {8}, DType::kF32, Device::cuda(0));
  EXPECT_THROW(w.allreduce(on_gpu, ReduceOp::kSum), CommError);
  // The step appears in the message once set.
  w.set_step(17);
  try {
    w.allreduce(Tensor(half.data(), {8}, DType::kBF16), ReduceOp::kSum);
    ADD_FAILURE() << "a bf16 allreduce at step 17 did not throw";
  } catch (const CommError& e) {
    EXPECT_NE(std::string(e.what()).find("at step 17"), std::string::npos) << e.what();
  }
  w.set_step(-1);
}

TEST(CollectivesMisc, BarrierAndIdentity) {
  MpiCommunicator& w = world();
  w.barrier();
  EXPECT_EQ(w.backend(), "mpi");
  EXPECT_GE(w.rank(), 0);
  EXPECT_LT(w.rank(), w.size());
  EXPECT_FALSE(w.host_name().empty());
  EXPECT_NE(MpiCommunicator::library_version().find("MPI"), std::string::npos);
  EXPECT_EQ(&comm_for(Device::cpu()), &w);
  // Every rank agrees on the world size it sees.
  int64_t size = w.size();
  w.allreduce(Tensor::of(&size, 1), ReduceOp::kMax);
  EXPECT_EQ(size, w.size());
  w.barrier();
}

TEST(CollectivesMisc, CudaDeviceWithoutCudaBuildIsAClearError) {
  if (cuda_available()) GTEST_SKIP() << "a CUDA device is present";
#ifndef LOOM_TEST_WITH_NCCL
  try {
    comm_for(Device::cuda(0));
    FAIL() << "comm_for(cuda:0) did not throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cuda:0"), std::string::npos) << e.what();
  }
#endif
}

}  // namespace
}  // namespace loom::test
