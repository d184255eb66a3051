#pragma once
// Building GloVe's co-occurrence matrix: each rank counts its corpus shard (threads,
// spilling sorted runs over the memory budget; Note [Dense block] in cooccur_count.h),
// the runs are merged and exchanged so that rank r owns the rows with row % W == r,
// summed exactly, shuffled from (seed, r) and written as the partition file of
// io/cooccur.h. The algorithm lives with GloVe; io/ keeps the file formats and the runs.
#include <string>

#include "io/cooccur.h"

namespace loom {

class Communicator;

// Counts, exchanges and (when out_dir is not empty) writes
// out_dir/cooccur.part-<r>-of-<W>.h5 (Note [Cooccur file format] in cooccur_io.cpp).
CooccurResult build_cooccurrence(Communicator& comm, const Vocab& vocab, const CorpusLayout& layout,
                                 const CorpusOptions& corpus, const CooccurOptions& options,
                                 const std::string& out_dir);
CooccurResult build_cooccurrence(Communicator& comm, const Vocab& vocab, const CorpusOptions& corpus,
                                 const CooccurOptions& options, const std::string& out_dir);

}  // namespace loom
