#pragma once
// SoloCommunicator: a world of one, in process, without MPI. Collectives leave buffers
// as they are (the sum over one rank) and async ones are complete at once. For unit tests
// of code that takes a Communicator (GradSync, a model trained as "a single process" next
// to a real MPI world).
#include <algorithm>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <span>

#include "dist/communicator.h"

namespace loom::test {

class SoloCommunicator final : public Communicator {
 public:
  class DoneWork final : public Work {
   public:
    void wait() override {}
    bool done() override { return true; }
  };
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string_view backend() const override { return "solo"; }
  MpiCommHandle mpi_comm() const override { return {}; }   // no MPI ranks behind it
  void allreduce(Tensor, const CollectiveOptions&) override {}
  std::unique_ptr<Work> allreduce_async(Tensor, const CollectiveOptions&) override {
    return std::make_unique<DoneWork>();
  }
  void broadcast(Tensor, int) override {}
  void allgatherv(Tensor mine, Tensor all, std::span<const int64_t>) override {
    LOOM_ASSERT(mine.data() == all.data() || mine.nbytes() <= all.nbytes(), "allgatherv sizes");
    if (mine.data() != all.data() && mine.nbytes() > 0)
      std::copy_n(static_cast<const std::byte*>(mine.data()), mine.nbytes(), static_cast<std::byte*>(all.data()));
  }
  void alltoallv(Tensor send, std::span<const int64_t>, Tensor recv, std::span<const int64_t>) override {
    if (send.data() != recv.data() && send.nbytes() > 0)
      std::copy_n(static_cast<const std::byte*>(send.data()), send.nbytes(), static_cast<std::byte*>(recv.data()));
  }
  void barrier() override {}
  [[noreturn]] void abort(std::string_view, int) override { std::abort(); }
};

}  // namespace loom::test
