#pragma once
// Shared by the cluster tests: the final state of a checkpoint as raw floats (compared bit
// for bit, as tests/fault/test_resume.cpp does), shell helpers, and the paths of the
// scripts in tests/cluster.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "core/param_store.h"
#include "io/checkpoint.h"
#include "tests/support/test_support.h"

namespace loom::test {

inline std::string cluster_script(const std::string& name) { return std::string(LOOM_CLUSTER_DIR) + "/" + name; }

inline std::string env_or_throw(const char* name) {
  const char* p = std::getenv(name);
  if (p == nullptr) throw std::runtime_error(std::string(name) + " is not set (run through ctest)");
  return p;
}

// Runs a shell command line; returns {status, out, err}.
inline RunResult sh(const std::string& line, std::chrono::milliseconds timeout = std::chrono::seconds(60),
                    const std::vector<std::string>& env = {}) {
  return run({"/bin/bash", "-c", line}, timeout, env);
}

// Every /model and /optimizer dataset of a checkpoint as floats.
inline std::vector<std::vector<float>> final_state(const std::string& path) {
  CheckpointReader reader;
  reader.open(path);
  std::vector<std::vector<float>> out;
  for (const DatasetInfo& d : reader.list_datasets()) {
    if (d.path.rfind("/model/", 0) != 0 && d.path.rfind("/optimizer/", 0) != 0) continue;
    std::vector<float> values(d.bytes / 4);
    std::string name = d.path.substr(d.path.find('/', 1) + 1);
    Shape shape = Shape::from(d.shape.data(), int(d.shape.size()));
    if (d.path.rfind("/model/", 0) == 0) {
      ParamStore ps;
      ps.declare(name, shape);
      ps.finalize();
      reader.read_model_into(ps);
      std::copy_n(ps.value(0).f32(), values.size(), values.data());
    } else {
      size_t slash = name.rfind('/');
      reader.read_slot(name.substr(0, slash), name.substr(slash + 1), Tensor(values.data(), shape, DType::kF32));
    }
    out.push_back(std::move(values));
  }
  return out;
}

inline std::string step_file(const std::string& checkpoint_dir, int step) {
  char name[32];
  std::snprintf(name, sizeof name, "step_%08d.h5", step);
  return checkpoint_dir + "/" + name;
}

// Bit-for-bit equality of two final states, naming the first difference.
inline void expect_same_bits(const std::vector<std::vector<float>>& expected,
                             const std::vector<std::vector<float>>& actual, const std::string& what) {
  ASSERT_FALSE(expected.empty()) << what;
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t d = 0; d < expected.size(); ++d) {
    ASSERT_EQ(actual[d].size(), expected[d].size()) << what << ", dataset " << d;
    for (size_t k = 0; k < expected[d].size(); ++k)
      ASSERT_EQ(std::memcmp(&actual[d][k], &expected[d][k], 4), 0)
          << what << ", dataset " << d << ", element " << k << ": expected " << expected[d][k] << ", got "
          << actual[d][k];
  }
}

// Polls `done` every 100 ms until it returns true or `limit` passes.
template <class F>
bool wait_until(F done, std::chrono::milliseconds limit) {
  auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  return done();
}

}  // namespace loom::test
