#pragma once
// The kill-and-resume tests of every model (tests/fault/{glove,word2vec,gpt,bert}_resume_test.cpp),
// shared: the same plan of kills on the real `loom train` for every model, and, for the
// transformers, the same resume at other world sizes. Each model's test supplies its
// corpus, config and command.
#include <functional>
#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace loom::test {

struct KillJob {
  int every = 4;    // checkpoint.every_steps (a model may save at the first step it can after)
  // `loom train` of the model at np ranks in run_dir; --resume `resume` when not empty; --set
  // each of `sets`.
  using Command = std::function<std::vector<std::string>(int np, const std::string& run_dir, const std::string& resume,
                                                          const std::vector<std::string>& sets)>;
  Command command;
  // Files of the run directory a resumed run must write byte for byte as an uninterrupted
  // one (exported vectors).
  std::vector<std::string> outputs;
  // eval.json's held-out curve (the transformers'), equal value for value after a resume.
  bool heldout_curve = false;
  // For expect_resume_at_other_world_sizes: the run's steps and the eval.json values a
  // resume at another world size reproduces within float tolerance.
  int steps = 40;
  std::vector<std::string> eval_keys;
};

// The usual command: `loom train CONFIG --set run.dir=RUN_DIR`, then --set each of
// `base_sets` and of the call's sets, then --resume RESUME when asked.
KillJob::Command train_command(const std::string& config, const std::vector<std::string>& base_sets);

// Note [Twenty kills of a run]
// At world size np, twenty runs are each killed once (kill -9 of one rank), resumed with
// --resume auto to the end, and must end bit for bit where an uninterrupted run ends: every
// /model and /optimizer dataset, every step's loss in metrics.jsonl from the resumed step
// on, the job's outputs and (transformers) the held-out curve of eval.json. The kills:
//  - six inside a checkpoint write, one at each point of Note [Fault injection points]
//    (data, fsync, rename, dirsync, latest, latest-rename), in a write after the first has
//    committed: the rank that writes is killed while it pauses there, the directory must show
//    the write unfinished (unfinished_checkpoint_write), and the resume must come from an
//    earlier checkpoint than the one being written;
//  - one inside the resume's own load (LOOM_FAULT_RESUME_PAUSE_MS) after a random kill: the
//    next resume comes from the same checkpoint;
//  - one at a random instant from the launch on, in the first half of the run (start-up,
//    MPI_Init, the corpus and vocabulary stages...): where no checkpoint existed yet, the
//    resume starts fresh and says so;
//  - twelve at a random instant inside a random step after the first checkpoint (the test
//    waits for that step in metrics.jsonl and for `latest`, then a random fraction of a
//    step's time).
// Every resume comes from the checkpoint `latest` named when the job died (or, where there was
// none, from a complete checkpoint, or fresh where none was complete).
// After every kill the job must end (no mpirun hang tolerated, except Open MPI 4.1's teardown
// race for the one kill that may fall inside MPI_Init: wait_for_killed_job) and no process of
// it may be left (ps, by the run directory in its command line).
void expect_twenty_kills_resume_bit_for_bit(const KillJob& job, int np, const TempDir& dir);

// The random kills of Note [Twenty kills of a run] alone, `kills` of them: each at a random
// instant inside a random step after the first checkpoint, then --resume auto from the
// checkpoint `latest` named, ending bit for bit where the uninterrupted run ends (state,
// losses from the resumed step on, outputs, held-out curve). For a variant of a model
// (another optimizer) whose full twenty kills would double the test's time.
void expect_random_kills_resume_bit_for_bit(const KillJob& job, int np, int kills, const TempDir& dir);

// A run written at np 2 (every checkpoint kept) resumes from step 12 at np 1 and at np 3:
// it continues from the same global position with the same state, so its losses and
// eval_keys stay within 1e-5 relative of the np 2 run (Note [GPT resume tolerance]) while
// neighbouring steps differ by far more, and it finishes.
void expect_resume_at_other_world_sizes(const KillJob& job, const TempDir& dir);

}  // namespace loom::test
