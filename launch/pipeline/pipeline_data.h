#pragma once
// The data stages that model kinds share (`loom vocab`, and the first half of `loom train`):
// the corpus (a user's files, or the planted-relation corpus generated into the run
// directory) and the vocabulary, reused from the run directory when its inputs and
// settings are unchanged; and the reuse machinery a kind's own stages use (GloVe's
// co-occurrence partitions, launch/kinds/glove.cpp).
//
// Note [Stage reuse]
// A stage's outputs in RUN_DIR are committed by a fingerprint file written last:
//   vocab.txt, vocab.h5                  -> vocab.fingerprint
//   cooccur.part-<r>-of-<W>.h5 (W files) -> cooccur.fingerprint
// A fingerprint is text, one `key = value` line per input: every corpus file's resolved
// path, byte size and mtime (nanoseconds), the [corpus] keys that change tokens,
// vocab.min_count / vocab.max_vocab and vocab.h5's format version; the co-occurrence fingerprint adds the vocabulary's
// fingerprint, cooccur.window, cooccur.symmetric, run.seed (the partition shuffle) and the
// world size. Keys that cannot change the result (memory_gb, spill_dir, threads) are left
// out. Rank 0 compares the stored file with the one it computes and broadcasts the
// decision; on a mismatch it logs the first differing line, deletes the old fingerprint
// (so a run killed mid-stage never trusts half-written files), recomputes, and writes the
// new fingerprint after every rank has written its files.
// The partitions (rows with row % W == r, shuffled from (seed, r)) depend on the world
// size, so a run at another world size recomputes the co-occurrence (the vocabulary,
// which does not depend on it, is reused) and removes the partition files of other world
// sizes. Re-partitioning the old files instead would make the order of the non-zeros, and
// so the trained vectors, depend on the run's history rather than on (seed, world size).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "io/corpus_shard.h"
#include "io/vocab.h"
#include "launch/monitor/run_status.h"

namespace loom {

class Communicator;
struct Config;

// The corpus a run reads, with where its generated files live.
struct CorpusPlan {
  CorpusOptions options;          // paths resolved by the corpus stage
  std::string planted_questions;  // the generated questions (corpus.synthetic), else ""
  std::optional<CorpusLayout> layout;   // scanned (collectively) by the first stage that reads
};

// [corpus] onto CorpusOptions. ConfigError when corpus.paths is empty without
// corpus.synthetic, or both are set.
CorpusOptions corpus_options(const Config& config);
// [progress] and [status] onto what RunStatus and StageProgress show.
DisplayOptions display_options(const Config& config);
VocabOptions vocab_options(const Config& config, int threads);

// Collective. With corpus.synthetic, rank 0 writes RUN_DIR/planted.txt and
// RUN_DIR/planted-questions.txt unless they already hold the same (seed, sentences).
CorpusPlan prepare_corpus(Communicator& comm, const Config& config, const std::string& run_dir);

// How long a stage took and whether its result was reused from the run directory.
struct StageTime {
  double seconds = 0;
  bool reused = false;
};

// Collective: the vocabulary, reused from RUN_DIR or built (Note [Stage reuse]).
Vocab vocab_stage(Communicator& comm, const Config& config, CorpusPlan& corpus,
                  const std::string& run_dir, int threads, StageTime* time);

// ---- the reuse machinery (Note [Stage reuse]) --------------------------------------------
// The fingerprint of the vocabulary's inputs (corpus files and settings); a later stage
// appends its own keys to it.
std::string vocab_fingerprint(const Config& config, const CorpusOptions& corpus);
// Collective: rank 0 compares the stored fingerprint with `now` (and checks `outputs`
// exist); every rank learns whether the stage may reuse them. On a mismatch rank 0 logs
// why under `stage` and deletes the stale fingerprint.
bool agree_on_reuse(Communicator& comm, const std::string& fingerprint_path, const std::string& now,
                    const std::vector<std::string>& outputs, const char* stage);
// Collective on first use: the corpus layout (file sizes and shard boundaries).
const CorpusLayout& layout_of(Communicator& comm, CorpusPlan& corpus);
// The file's text, or "" when it does not exist.
std::string read_text(const std::string& path);
// tmp + rename: a reader sees the old text or the new, never a part.
void write_text_atomically(const std::string& path, const std::string& text);

}  // namespace loom
