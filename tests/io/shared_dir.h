#pragma once
// A directory every rank of a communicator sees: its rank 0 makes (and removes) it and
// broadcasts the path. The destructor waits on the world, so nobody still reads when it goes.
#include <memory>
#include <string>

#include "dist/mpi_communicator.h"
#include "tests/support/test_support.h"

namespace loom::test {

class SharedDir {
 public:
  explicit SharedDir(Communicator& comm) {
    if (comm.rank() == 0) {
      dir_ = std::make_unique<TempDir>();
      path_ = dir_->path();
    }
    int64_t len = static_cast<int64_t>(path_.size());
    comm.broadcast(Tensor::of(&len, 1), 0);
    path_.resize(static_cast<size_t>(len));
    comm.broadcast(Tensor::of(reinterpret_cast<uint8_t*>(path_.data()), len), 0);
  }
  ~SharedDir() { MpiCommunicator::world().barrier(); }
  SharedDir(const SharedDir&) = delete;
  SharedDir& operator=(const SharedDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::unique_ptr<TempDir> dir_;
  std::string path_;
};

}  // namespace loom::test
