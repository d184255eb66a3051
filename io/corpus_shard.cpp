#include "io/corpus_shard.h"

#include <glob.h>

#include <algorithm>
#include <filesystem>

#include "core/error.h"
#include "core/tensor.h"
#include "dist/communicator.h"
#include "io/tokenize.h"
#include "io/text_source.h"

namespace loom {
namespace fs = std::filesystem;

std::vector<std::string> resolve_corpus_paths(const std::vector<std::string>& paths) {
  std::vector<std::string> out;
  for (const std::string& p : paths) {
    if (p.find_first_of("*?[") != std::string::npos) {
      glob_t g{};
      int rc = ::glob(p.c_str(), 0, nullptr, &g);
      if (rc != 0 || g.gl_pathc == 0) {
        globfree(&g);
        throw IoError("corpus path pattern '" + p + "' matches no file (check corpus.paths)");
      }
      std::vector<std::string> matched(g.gl_pathv, g.gl_pathv + g.gl_pathc);
      globfree(&g);
      for (auto& m : resolve_corpus_paths(matched)) out.push_back(std::move(m));
      continue;
    }
    std::error_code ec;
    fs::file_status st = fs::status(p, ec);
    if (ec || !fs::exists(st))
      throw IoError("corpus path '" + p + "' does not exist (check corpus.paths)");
    if (fs::is_directory(st)) {
      std::vector<std::string> inside;
      for (const auto& e : fs::recursive_directory_iterator(p))
        if (e.is_regular_file()) inside.push_back(e.path().string());
      std::sort(inside.begin(), inside.end());
      out.insert(out.end(), inside.begin(), inside.end());
    } else {
      out.push_back(p);
    }
  }
  return out;
}

namespace {

// total * k / parts without overflow.
uint64_t share(uint64_t total, uint64_t k, uint64_t parts) {
  __extension__ using U128 = unsigned __int128;
  return static_cast<uint64_t>(static_cast<U128>(total) * k / parts);
}

std::vector<CorpusFile> files_of(const CorpusOptions& options) {
  std::vector<CorpusFile> files;
  for (auto& p : resolve_corpus_paths(options.paths)) files.push_back({p, 0, 0});
  if (files.empty() && options.paths.empty()) throw IoError("the corpus has no files: corpus.paths is empty");
  if (files.empty()) {
    // Name what was looked in: "empty directories" alone left the user guessing which.
    std::string named;
    for (const std::string& p : options.paths) named += (named.empty() ? "" : ", ") + p;
    throw IoError("the corpus has no files: corpus.paths names only directories with no file in them (" + named +
                  "); put the corpus files there or name them");
  }
  return files;
}

}  // namespace

CorpusLayout CorpusLayout::scan_local(const CorpusOptions& options) {
  CorpusLayout layout;
  layout.files_ = files_of(options);
  for (auto& f : layout.files_) {
    f.begin = layout.total_;
    f.size = uncompressed_size(f.path);
    layout.total_ += f.size;
  }
  return layout;
}

CorpusLayout CorpusLayout::scan(Communicator& comm, const CorpusOptions& options) {
  CorpusLayout layout;
  layout.files_ = files_of(options);
  // Plain files: every rank stats them. Compressed: file i is decoded by rank i % size.
  std::vector<int64_t> sizes(layout.files_.size(), 0);
  for (size_t i = 0; i < sizes.size(); ++i) {
    bool plain = compression_of(layout.files_[i].path) == Compression::kNone;
    if (plain ? comm.rank() == 0 : static_cast<int>(i % static_cast<size_t>(comm.size())) == comm.rank())
      sizes[i] = static_cast<int64_t>(uncompressed_size(layout.files_[i].path));
  }
  comm.allreduce(Tensor::of(sizes.data(), static_cast<int64_t>(sizes.size())), ReduceOp::kSum);
  for (size_t i = 0; i < sizes.size(); ++i) {
    layout.files_[i].begin = layout.total_;
    layout.files_[i].size = static_cast<uint64_t>(sizes[i]);
    layout.total_ += layout.files_[i].size;
  }
  return layout;
}

size_t CorpusLayout::file_of(uint64_t g) const {
  auto it = std::upper_bound(files_.begin(), files_.end(), g,
                             [](uint64_t v, const CorpusFile& f) { return v < f.begin; });
  LOOM_ASSERT(it != files_.begin());
  return static_cast<size_t>(it - files_.begin()) - 1;
}

std::string CorpusLayout::read_file_range(size_t file, uint64_t begin, uint64_t end) const {
  LOOM_ASSERT(file < files_.size() && begin <= end && end <= files_[file].size);
  auto src = open_text_source(files_[file].path);
  src->skip_to(begin);
  std::string out(end - begin, '\0');
  size_t have = 0;
  while (have < out.size()) {
    size_t got = src->read(out.data() + have, out.size() - have);
    if (got == 0)
      throw IoError("corpus file " + files_[file].path + " ended at byte " +
                    std::to_string(begin + have) + ", before its size when scanned (" +
                    std::to_string(files_[file].size) + "); was it changed while loom ran?");
    have += got;
  }
  return out;
}

uint64_t CorpusLayout::align(uint64_t g, size_t max_line_bytes) const {
  if (g >= total_) return total_;
  size_t f = file_of(g);
  const CorpusFile& file = files_[f];
  if (g == file.begin) return g;
  uint64_t local = g - file.begin;           // > 0
  uint64_t window_end = std::min<uint64_t>(file.size, local + max_line_bytes);
  std::string head = read_file_range(f, local - 1, window_end);
  size_t nl = head.find('\n');
  if (nl != std::string::npos) return file.begin + local + nl;   // byte after the '\n'
  if (window_end == file.size) return file.begin + file.size;
  // A long line: the first token start at or after g (Note [Shard boundaries]).
  for (uint64_t from = local - 1; from < file.size;) {
    uint64_t to = std::min<uint64_t>(file.size, from + (uint64_t{1} << 20));
    std::string block = read_file_range(f, from, to);
    for (size_t i = 1; i < block.size(); ++i)
      if (is_space(block[i - 1]) && !is_space(block[i])) return file.begin + from + i;
    if (to == file.size) break;
    from = to - 1;
  }
  return file.begin + file.size;
}

// ---- cursor ---------------------------------------------------------------------------

std::vector<uint64_t> CorpusCursor::to_words() const {
  std::vector<uint64_t> w{ranges.size()};
  for (const Range& r : ranges) w.insert(w.end(), {r.begin_file, r.begin_byte, r.end_file, r.end_byte});
  return w;
}

CorpusCursor CorpusCursor::from_words(std::span<const uint64_t> words) {
  if (words.empty() || words.size() != 1 + 4 * words[0])
    throw DataError("corpus cursor of " + std::to_string(words.size()) +
                    " words is malformed (want 1 + 4 per range); the checkpoint's /state/data is damaged");
  CorpusCursor c;
  for (size_t i = 0; i < words[0]; ++i) {
    const uint64_t* p = words.data() + 1 + 4 * i;
    c.ranges.push_back({p[0], p[1], p[2], p[3]});
  }
  return c;
}

bool CorpusCursor::operator==(const CorpusCursor& other) const {
  return to_words() == other.to_words();
}

namespace {

using GlobalRanges = std::vector<std::pair<uint64_t, uint64_t>>;

CorpusCursor::Range to_range(const CorpusLayout& layout, uint64_t b, uint64_t e) {
  auto pos = [&](uint64_t g) {
    size_t f = g >= layout.total_bytes() ? layout.files().size() - 1 : layout.file_of(g);
    return std::pair<uint64_t, uint64_t>{f, g - layout.files()[f].begin};
  };
  auto [bf, bb] = pos(b);
  auto [ef, eb] = pos(e);
  return {bf, bb, ef, eb};
}

GlobalRanges to_global(const CorpusLayout& layout, const CorpusCursor& cursor) {
  GlobalRanges out;
  const auto& files = layout.files();
  auto g = [&](uint64_t f, uint64_t b) {
    if (f >= files.size() || b > files[f].size)
      throw DataError("corpus cursor names file " + std::to_string(f) + " byte " +
                      std::to_string(b) + ", outside this corpus (" +
                      std::to_string(files.size()) + " files); resume with the same corpus.paths");
    return files[f].begin + b;
  };
  for (const auto& r : cursor.ranges) {
    uint64_t b = g(r.begin_file, r.begin_byte), e = g(r.end_file, r.end_byte);
    if (b < e) out.emplace_back(b, e);
  }
  return out;
}

}  // namespace

CorpusShard::CorpusShard(const CorpusLayout& layout, const CorpusOptions& options, int rank,
                         int world)
    : layout_(layout), options_(options) {
  LOOM_ASSERT(world > 0 && rank >= 0 && rank < world);
  auto nominal = [&](int r) {
    return share(layout.total_bytes(), static_cast<uint64_t>(r), static_cast<uint64_t>(world));
  };
  uint64_t b = layout.align(nominal(rank), options.max_line_bytes);
  uint64_t e = layout.align(nominal(rank + 1), options.max_line_bytes);
  GlobalRanges ranges;
  if (b < e) ranges.emplace_back(b, e);
  start(std::move(ranges));
}

CorpusShard::CorpusShard(const CorpusLayout& layout, const CorpusOptions& options,
                         const CorpusCursor& cursor)
    : layout_(layout), options_(options) {
  start(to_global(layout, cursor));
}

CorpusCursor CorpusShard::cursor() const {
  CorpusCursor c;
  for (const auto& [b, e] : ranges_)
    if (e > position_) c.ranges.push_back(to_range(layout_, std::max(b, position_), e));
  return c;
}

CorpusCursor CorpusShard::resplit(const CorpusLayout& layout, const CorpusOptions& options,
                                  std::span<const CorpusCursor> all, int new_rank, int new_world) {
  LOOM_ASSERT(new_world > 0 && new_rank >= 0 && new_rank < new_world);
  GlobalRanges left;
  for (const auto& c : all)
    for (auto& r : to_global(layout, c)) left.push_back(r);
  std::sort(left.begin(), left.end());
  uint64_t remaining = 0;
  for (auto& [b, e] : left) remaining += e - b;
  // Boundary k as (range index, global offset), aligned but kept inside its range.
  auto boundary = [&](int k) -> std::pair<size_t, uint64_t> {
    uint64_t t = share(remaining, static_cast<uint64_t>(k), static_cast<uint64_t>(new_world));
    if (k == new_world || left.empty()) return {left.size(), 0};
    for (size_t i = 0; i < left.size(); ++i) {
      uint64_t len = left[i].second - left[i].first;
      if (t < len) {
        uint64_t g = left[i].first + t;
        if (t == 0) return {i, g};
        return {i, std::min(left[i].second, layout.align(g, options.max_line_bytes))};
      }
      t -= len;
    }
    return {left.size(), 0};
  };
  auto [bi, bg] = boundary(new_rank);
  auto [ei, eg] = boundary(new_rank + 1);
  CorpusCursor out;
  for (size_t i = bi; i < left.size() && i <= ei; ++i) {
    uint64_t b = i == bi ? bg : left[i].first;
    uint64_t e = i == ei ? eg : left[i].second;
    if (b < e) out.ranges.push_back(to_range(layout, b, e));
  }
  return out;
}

}  // namespace loom
