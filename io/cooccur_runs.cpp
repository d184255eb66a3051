#include "io/cooccur_runs.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

namespace loom::cooccur {
namespace {

constexpr size_t kCursorBuffer = 4096;   // entries read per pread of a run file

void write_all(int fd, const void* data, size_t bytes, const std::string& path) {
  const char* p = static_cast<const char*>(data);
  while (bytes > 0) {
    ssize_t n = ::write(fd, p, bytes);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0)
      throw IoError("cannot write spill file " + path + ": " + std::strerror(errno) +
                    " (free space in cooccur.spill_dir or raise cooccur.memory_gb)");
    p += n;
    bytes -= static_cast<size_t>(n);
  }
}

}  // namespace

void throw_value_overflow() {
  throw DataError("co-occurrence value overflows 64-bit fixed point; use a smaller "
                  "cooccur.window (the unit is 1/lcm(1..window))");
}

RunCursor::RunCursor(const KV* mem, uint64_t begin, uint64_t end) : mem_(mem), pos_(begin), end_(end) {}

RunCursor::RunCursor(const std::string& path, uint64_t begin, uint64_t end)
    : path_(path), pos_(begin), end_(end) {
  fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw IoError("cannot open spill file " + path + ": " + std::strerror(errno));
  buf_begin_ = pos_;
  fill();
}

RunCursor::RunCursor(RunCursor&& o) noexcept
    : mem_(o.mem_), fd_(o.fd_), path_(std::move(o.path_)), pos_(o.pos_), end_(o.end_),
      buf_(std::move(o.buf_)), buf_begin_(o.buf_begin_) {
  o.fd_ = -1;
}

RunCursor::~RunCursor() {
  if (fd_ >= 0) ::close(fd_);
}

void RunCursor::fill() {
  size_t n = static_cast<size_t>(std::min<uint64_t>(kCursorBuffer, end_ - pos_));
  buf_.resize(n);
  buf_begin_ = pos_;
  size_t bytes = n * sizeof(KV), have = 0;
  while (have < bytes) {
    ssize_t got = ::pread(fd_, reinterpret_cast<char*>(buf_.data()) + have, bytes - have,
                          static_cast<off_t>(pos_ * sizeof(KV) + have));
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) throw IoError("cannot read spill file " + path_ + ": short read");
    have += static_cast<size_t>(got);
  }
}

void RunCursor::advance() {
  ++pos_;
  if (!mem_ && pos_ < end_ && pos_ - buf_begin_ >= buf_.size()) fill();
}

RunStore::RunStore(std::string spill_dir, std::string tag, size_t budget_bytes,
                   std::vector<uint64_t> bounds)
    : spill_dir_(std::move(spill_dir)), tag_(std::move(tag)), budget_(budget_bytes),
      bounds_(std::move(bounds)) {}

RunStore::~RunStore() { clear(); }

void RunStore::clear() {
  for (auto& r : runs_)
    if (!r.path.empty()) std::remove(r.path.c_str());
  runs_.clear();
  memory_ = 0;
}

std::vector<uint64_t> RunStore::segment_starts(const std::vector<KV>& run) const {
  std::vector<uint64_t> starts;
  for (size_t s = 0; s + 1 < bounds_.size(); ++s) {
    auto it = std::lower_bound(run.begin(), run.end(), bounds_[s],
                               [](const KV& kv, uint64_t k) { return kv.key < k; });
    starts.push_back(static_cast<uint64_t>(it - run.begin()));
  }
  starts.push_back(run.size());
  return starts;
}

uint64_t RunStore::entries(size_t seg) const {
  uint64_t n = 0;
  for (const auto& r : runs_) n += r.seg_start[seg + 1] - r.seg_start[seg];
  return n;
}

void RunStore::add(std::vector<KV> run) {
  if (run.empty()) return;
  memory_ += run.size() * sizeof(KV);
  Run r;
  r.seg_start = segment_starts(run);
  r.mem = std::move(run);
  runs_.push_back(std::move(r));
  if (memory_ > budget_) spill_memory_runs();
  else if (memory_runs() > kMaxMemoryRuns) merge_memory_runs();
}

size_t RunStore::memory_runs() const {
  return static_cast<size_t>(std::count_if(runs_.begin(), runs_.end(), [](const Run& r) { return r.path.empty(); }));
}

void RunStore::merge_memory_runs() {
  std::vector<RunCursor> cs;
  uint64_t total = 0;
  for (auto& r : runs_)
    if (r.path.empty()) {
      cs.emplace_back(r.mem.data(), 0, r.mem.size());
      total += r.mem.size();
    }
  std::vector<KV> merged(total);
  size_t n = 0;
  merge_runs(cs, [&](uint64_t k, uint64_t v) { merged[n++] = {k, v}; });
  merged.resize(n);
  cs.clear();
  std::erase_if(runs_, [](const Run& r) { return r.path.empty(); });
  memory_ = 0;
  add(std::move(merged));
}

void RunStore::spill_memory_runs() {
  std::string path = spill_dir_ + "/" + tag_ + ".spill-" + std::to_string(spills_) + ".bin";
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError("cannot create spill file " + path + ": " + std::strerror(errno));
  Run out;
  out.path = path;
  std::vector<KV> block;
  block.reserve(kCursorBuffer);
  uint64_t written = 0;
  for (size_t s = 0; s + 1 < bounds_.size(); ++s) {
    out.seg_start.push_back(written);
    std::vector<RunCursor> cs;
    for (auto& r : runs_)
      if (r.path.empty()) cs.emplace_back(r.mem.data(), r.seg_start[s], r.seg_start[s + 1]);
    written += static_cast<uint64_t>(merge_runs(cs, [&](uint64_t k, uint64_t v) {
      block.push_back({k, v});
      if (block.size() == kCursorBuffer) { write_all(fd, block.data(), block.size() * sizeof(KV), path); block.clear(); }
    }));
  }
  write_all(fd, block.data(), block.size() * sizeof(KV), path);
  ::close(fd);
  out.seg_start.push_back(written);
  std::erase_if(runs_, [](const Run& r) { return r.path.empty(); });
  runs_.push_back(std::move(out));
  memory_ = 0;
  ++spills_;
}

std::vector<RunCursor> RunStore::cursors(size_t seg) const {
  std::vector<RunCursor> cs;
  for (const auto& r : runs_) {
    if (r.seg_start[seg] == r.seg_start[seg + 1]) continue;
    if (r.path.empty()) cs.emplace_back(r.mem.data(), r.seg_start[seg], r.seg_start[seg + 1]);
    else cs.emplace_back(r.path, r.seg_start[seg], r.seg_start[seg + 1]);
  }
  return cs;
}

}  // namespace loom::cooccur
