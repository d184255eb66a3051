#pragma once
// What the fault tests of the real `loom train` share (damage_matrix_test.cpp,
// disk_full_test.cpp, kill_plan.cpp): the check that a finished job left no process behind,
// and tiny configurations of every model with the files they read.
#include <cstdint>
#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace loom::test {

// Note [No process left behind]
// Every run of a fault test has its own directory, which every rank's command line holds
// (run.dir=...). After a run has ended, /proc is searched for any live process (a zombie is
// dead) whose command line holds that directory: mpirun, a rank, a helper it started.

// A process's state letter from /proc/PID/stat ('R', 'S', 'T', 'Z'...); '?' when it is gone.
char state_of(const std::string& pid);
// "pid state cmdline" of each live process whose command line holds `marker`, one a line.
std::string processes_holding(const std::string& marker);
// Waits briefly for what a finished job's launcher may still be reaping, then fails
// listing what is left.
void expect_nothing_left(const std::string& marker, const std::string& what);

// A tiny run of one model (glove, word2vec, gpt, bert): seconds at 1 or 2 ranks, a
// checkpoint every step (every 4th for word2vec, whose checkpoints follow its rare-row sums),
// every checkpoint kept.
struct ModelCase {
  std::string name;
  std::vector<std::string> args;   // `loom train` arguments, run.dir apart
  std::string flipped;             // a dataset to flip a byte in
  std::string deleted;             // a dataset to delete
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
