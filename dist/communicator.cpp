#include "dist/communicator.h"

#include <vector>

namespace loom {

const char* reduce_op_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::kSum: return "sum";
    case ReduceOp::kAvg: return "avg";
    case ReduceOp::kMax: return "max";
    case ReduceOp::kMin: return "min";
  }
  return "?";
}

void Communicator::allgather(Tensor mine, Tensor all) {
  LOOM_ASSERT(all.numel() == mine.numel() * size(), "allgather: all must hold size() * mine");
  std::vector<int64_t> counts(static_cast<size_t>(size()), mine.numel());
  allgatherv(mine, all, counts);
}

}  // namespace loom
