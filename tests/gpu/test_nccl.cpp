// NcclCommunicator on the GPU this rank drives (label: gpu). Skips visibly unless every
// rank has a GPU of its own (NCCL refuses two ranks on one GPU). Integer-valued f32 data,
// so the sums are exact; compared with the host.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <thread>
#include <vector>

#include "core/buffer.h"
#include "core/device.h"
#include "dist/communicator.h"
#include "dist/gpu_select.h"
#include "dist/mpi_communicator.h"
#include "tests/gpu/gpu_ranks.h"
#include "tests/support/test_support.h"

namespace loom {
namespace {

Device my_gpu() { return gpu_for_this_rank(MpiCommunicator::world()); }

std::vector<float> to_host(const Buffer& b) {
  std::vector<float> host(b.size() / sizeof(float));
  copy_bytes(host.data(), Device::cpu(), b.data(), b.device(), b.size());
  return host;
}

TEST(Nccl, AllreduceBroadcastAllgathervAlltoallv) {
  MpiCommunicator& world = MpiCommunicator::world();
  LOOM_REQUIRE_GPU_PER_RANK(world);
  const int rank = world.rank(), size = world.size();
  Device gpu = my_gpu();
  Communicator& comm = comm_for(gpu);
  EXPECT_EQ(comm.backend(), "nccl");
  const int64_t n = 1001;
  std::vector<float> host(n);
  for (int64_t i = 0; i < n; ++i) host[static_cast<size_t>(i)] = static_cast<float>((i * 7 + rank * 13) % 41);
  Buffer buf(n * sizeof(float), gpu);
  copy_bytes(buf.data(), gpu, host.data(), Device::cpu(), buf.size());
  for (ReduceOp op : {ReduceOp::kSum, ReduceOp::kMax, ReduceOp::kMin, ReduceOp::kAvg}) {
    copy_bytes(buf.data(), gpu, host.data(), Device::cpu(), buf.size());
    comm.allreduce(buf.as(DType::kF32), op);
    std::vector<float> got = to_host(buf);
    for (int64_t i = 0; i < n; ++i) {
      float want = op == ReduceOp::kMin ? 1e30f : op == ReduceOp::kMax ? -1e30f : 0.0f;
      for (int r = 0; r < size; ++r) {
        float v = static_cast<float>((i * 7 + r * 13) % 41);
        want = op == ReduceOp::kMin ? std::min(want, v) : op == ReduceOp::kMax ? std::max(want, v) : want + v;
      }
      if (op == ReduceOp::kAvg) want /= static_cast<float>(size);
      ASSERT_NEAR(got[static_cast<size_t>(i)], want, 1e-5f) << "op " << reduce_op_name(op) << " index " << i << " rank " << rank;
    }
  }
  // Async allreduce (sum of integer-valued data: exact), then a broadcast from the last
  // rank of each rank's own values (so only a broadcast that happened gives the root's),
  // then a barrier after which the communicator still agrees on a sum.
  auto value_of = [](int64_t i, int r) { return static_cast<float>((i * 7 + r * 13) % 41); };
  copy_bytes(buf.data(), gpu, host.data(), Device::cpu(), buf.size());
  auto work = comm.allreduce_async(buf.as(DType::kF32), CollectiveOptions{});
  work->wait();
  EXPECT_TRUE(work->done());
  std::vector<float> summed = to_host(buf);
  for (int64_t i = 0; i < n; ++i) {
    float want = 0.0f;
    for (int r = 0; r < size; ++r) want += value_of(i, r);
    ASSERT_EQ(summed[static_cast<size_t>(i)], want) << "allreduce_async index " << i << " rank " << rank;
  }
  copy_bytes(buf.data(), gpu, host.data(), Device::cpu(), buf.size());
  comm.broadcast(buf.as(DType::kF32), size - 1);
  std::vector<float> broadcast = to_host(buf);
  for (int64_t i = 0; i < n; ++i)
    ASSERT_EQ(broadcast[static_cast<size_t>(i)], value_of(i, size - 1)) << "broadcast index " << i << " rank " << rank;
  // The barrier holds every rank until the last has entered: the last rank enters 300 ms
  // late, and no rank may leave before that (steady_clock is one clock for the processes
  // of a node, where these tests run).
  using Clock = std::chrono::steady_clock;
  if (rank == size - 1) std::this_thread::sleep_for(std::chrono::milliseconds(300));
  const int64_t entered = Clock::now().time_since_epoch().count();
  comm.barrier();
  const int64_t left = Clock::now().time_since_epoch().count();
  std::vector<int64_t> entries(static_cast<size_t>(size)), exits(static_cast<size_t>(size));
  int64_t e = entered, l = left;
  world.allgather(Tensor(&e, {1}, DType::kI64), Tensor(entries.data(), {size}, DType::kI64));
  world.allgather(Tensor(&l, {1}, DType::kI64), Tensor(exits.data(), {size}, DType::kI64));
  const int64_t last_entry = *std::max_element(entries.begin(), entries.end());
  for (int r = 0; r < size; ++r)
    EXPECT_GE(exits[static_cast<size_t>(r)], last_entry) << "rank " << r << " left the barrier before rank "
                                                         << size - 1 << " entered it";
  std::vector<float> one(1, 1.0f);
  Buffer count(sizeof(float), gpu);
  copy_bytes(count.data(), gpu, one.data(), Device::cpu(), sizeof(float));
  comm.allreduce(count.as(DType::kF32), ReduceOp::kSum);
  EXPECT_EQ(to_host(count)[0], static_cast<float>(size)) << "after the barrier, rank " << rank;

  std::vector<int64_t> counts(static_cast<size_t>(size));
  int64_t total = 0;
  for (int q = 0; q < size; ++q) total += counts[static_cast<size_t>(q)] = q == 1 ? 0 : 3 * q + 2;
  Buffer mine(static_cast<size_t>(counts[static_cast<size_t>(rank)]) * sizeof(float) + 4, gpu);
  Buffer all(static_cast<size_t>(total) * sizeof(float), gpu);
  std::vector<float> mine_host(static_cast<size_t>(counts[static_cast<size_t>(rank)]), static_cast<float>(rank + 1));
  if (!mine_host.empty()) copy_bytes(mine.data(), gpu, mine_host.data(), Device::cpu(), mine_host.size() * sizeof(float));
  Tensor mine_t(mine.data(), {counts[static_cast<size_t>(rank)]}, DType::kF32, gpu);
  comm.allgatherv(mine_t, all.as(DType::kF32), counts);
  std::vector<float> gathered = to_host(all);
  size_t k = 0;
  for (int q = 0; q < size; ++q)
    for (int64_t j = 0; j < counts[static_cast<size_t>(q)]; ++j, ++k)
      ASSERT_EQ(gathered[k], static_cast<float>(q + 1)) << "allgatherv index " << k << " rank " << rank;

  std::vector<int64_t> ones(static_cast<size_t>(size), 1);
  Buffer send(static_cast<size_t>(size) * sizeof(float), gpu), recv(static_cast<size_t>(size) * sizeof(float), gpu);
  std::vector<float> send_host(static_cast<size_t>(size));
  for (int q = 0; q < size; ++q) send_host[static_cast<size_t>(q)] = static_cast<float>(rank * 16 + q);
  copy_bytes(send.data(), gpu, send_host.data(), Device::cpu(), send.size());
  comm.alltoallv(send.as(DType::kF32), ones, recv.as(DType::kF32), ones);
  std::vector<float> got = to_host(recv);
  for (int q = 0; q < size; ++q)
    ASSERT_EQ(got[static_cast<size_t>(q)], static_cast<float>(q * 16 + rank)) << "alltoallv from " << q << " rank " << rank;
}

}  // namespace
}  // namespace loom
