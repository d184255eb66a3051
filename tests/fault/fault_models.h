#pragma once
// What the fault tests of the real `loom train` share (damage_matrix_test.cpp,
// disk_full_test.cpp, kill_plan.cpp): tiny configurations of every model with the files
// they read. The check that a finished job left no process behind is in
// tests/support/test_support.h (Note [No process left behind]).
#include <cstdint>
#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace loom::test {

// A tiny run of one model (glove, word2vec, gpt, bert): seconds at 1 or 2 ranks, a
// checkpoint every step (every 4th for word2vec, whose checkpoints follow its rare-row sums),
// every checkpoint kept.
struct ModelCase {
  std::string name;
  std::vector<std::string> args;   // `loom train` arguments, run.dir apart
  std::string flipped;             // a dataset to flip a byte in
  std::string deleted;             // a dataset to delete
  std::string reshaped;            // a parameter to rewrite with its slots in another shape
  bool vectors = false;            // exports vectors.txt
};

ModelCase model_case(const std::string& name);
// The files model_case's configurations read, made once per test binary; `bert_vocab()`
// is empty (with a test failure) when its WordPiece vocabulary could not be learnt.
const std::string& shared_dir();
const std::string& bert_vocab();
// `loom train` of the case at np ranks in run_dir, then `more` arguments.
std::vector<std::string> train_cmd(const ModelCase& m, int np, const std::string& run_dir,
                                   const std::vector<std::string>& more = {});

// A checkpoint's file name, "step_00000012.h5"; the steps of the step_*.h5 files in dir, in
// order.
std::string checkpoint_name(int64_t step);
std::vector<int64_t> checkpoint_steps(const std::string& dir);

}  // namespace loom::test
