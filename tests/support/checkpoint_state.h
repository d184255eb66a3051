#pragma once
// The trained state in a checkpoint, for tests that compare runs bit for bit: every
// /model and /optimizer dataset as float32, the run's final checkpoint (the one `latest`
// names), and an equality check that names the first differing element. Header-only: the
// tests that use it link loom_io and loom_core themselves.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "core/param_store.h"
#include "io/checkpoint.h"
#include "tests/support/test_support.h"

namespace loom::test {

// /model and /optimizer datasets of a checkpoint, as float32 arrays, in the file's order.
inline std::vector<std::vector<float>> checkpoint_state(const std::string& path) {
  CheckpointReader reader;
  reader.open(path);
  std::vector<std::vector<float>> out;
  for (const DatasetInfo& d : reader.list_datasets()) {
    const bool model = d.path.rfind("/model/", 0) == 0, slot = d.path.rfind("/optimizer/", 0) == 0;
    if (!model && !slot) continue;
    std::vector<float> values(d.bytes / 4);
    const Shape shape = Shape::from(d.shape.data(), static_cast<int>(d.shape.size()));
    const std::string name = d.path.substr(d.path.find('/', 1) + 1);
    if (model) {
      ParamStore ps;
      ps.declare(name, shape);
      ps.finalize();
      reader.read_model_into(ps);
      std::copy_n(ps.value(0).f32(), values.size(), values.data());
    } else {
      const size_t slash = name.rfind('/');
      reader.read_slot(name.substr(0, slash), name.substr(slash + 1), Tensor(values.data(), shape, DType::kF32));
    }
    out.push_back(std::move(values));
  }
  return out;
}

// The checkpoint that run_dir/checkpoints/latest names: after a finished run, its last.
inline std::string final_checkpoint(const std::string& run_dir) {
  const std::string latest = read_file(run_dir + "/checkpoints/latest");
  return run_dir + "/checkpoints/" + latest.substr(0, latest.find('\n'));
}

// Bit-for-bit equality of two states, naming the dataset and element of the first difference.
inline void expect_equal_state(const std::vector<std::vector<float>>& got, const std::vector<std::vector<float>>& want,
                               const std::string& what) {
  ASSERT_FALSE(want.empty()) << what << ": the expected state is empty";
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t d = 0; d < want.size(); ++d) {
    ASSERT_EQ(got[d].size(), want[d].size()) << what << ", dataset " << d;
    for (size_t k = 0; k < want[d].size(); ++k)
      ASSERT_EQ(std::memcmp(&got[d][k], &want[d][k], 4), 0)
          << what << ", dataset " << d << ", element " << k << ": expected " << want[d][k] << ", got " << got[d][k];
  }
}

}  // namespace loom::test
