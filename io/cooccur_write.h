#pragma once
// Writing a partition file while it is still being shuffled (internal to io/cooccur*.cpp).
//
// Note [Write behind the shuffle]
// Fisher-Yates from the end never touches position i - 1 again after step i, so the
// shuffled partition becomes final from the back. With more than one counting thread the
// rank has a core to spare once counting ends: a writer thread then writes each final
// block [lo, hi) of /cooccur while the shuffle goes on. Only the writer thread calls HDF5.
#include <cstddef>
#include <functional>
#include <string>

#include "io/cooccur.h"

namespace loom::cooccur {

// write_cooccur_h5, with /cooccur written from the back in blocks: wait_final(hi) blocks
// until some entries below hi are final and returns lo < hi such that [lo, hi) is final.
// result.entries must already have its final size.
void write_cooccur_h5_behind(const std::string& path, const CooccurResult& result, const Vocab& vocab,
                             const CooccurOptions& options, const std::function<size_t(size_t)>& wait_final);

}  // namespace loom::cooccur
