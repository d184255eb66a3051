// CorpusShard's read-ahead thread: reads the shard's ranges file by file into a pool of
// buffers, applies the UTF-8 policy and lower-casing, and queues chunks for next().
#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "core/error.h"
#include "io/corpus_shard.h"
#include "io/text_source.h"
#include "io/tokenize.h"
#include "io/utf8.h"

namespace loom {
namespace {

constexpr int kPoolSize = 3;

// Note [NUL is not text]: U+0000 is valid UTF-8, but no corpus means it: a NUL inside a
// token went raw into vocab.txt and the vector files (where C tools stop reading the line),
// uncounted. The UTF-8 policy treats a NUL byte as it treats an invalid sequence: an error
// naming file:byte, or U+FFFD, counted with the replaced sequences.
size_t first_bad(std::string_view in) {
  const size_t bad = utf8::first_invalid(in);
  const void* nul = std::memchr(in.data(), '\0', bad);
  return nul ? static_cast<size_t>(static_cast<const char*>(nul) - in.data()) : bad;
}

size_t bad_length(std::string_view in, size_t pos) {
  return in[pos] == '\0' ? 1 : utf8::invalid_length(in, pos);
}

// Applies the UTF-8 policy to text[0, n): returns the text to hand out (text itself, or
// `alt` holding the replaced version). Throws DataError naming path:byte under kError.
std::string_view apply_utf8(const char* text, size_t n, Utf8Policy policy, std::string& alt,
                            const std::string& path, uint64_t file_offset, uint64_t& replaced) {
  std::string_view in(text, n);
  size_t bad = first_bad(in);
  if (bad == n) return in;
  if (policy == Utf8Policy::kError)
    throw DataError(std::string(in[bad] == '\0' ? "a NUL byte" : "invalid UTF-8") + " at " + path + ":" +
                    std::to_string(file_offset + bad) +
                    " (byte offset; set corpus.utf8 = \"replace\" to replace and count "
                    "invalid bytes and NUL bytes instead)");
  alt.clear();
  size_t pos = 0;
  while (bad < n) {
    alt.append(in.substr(pos, bad - pos));
    alt.append(utf8::kReplacement);
    ++replaced;
    pos = bad + bad_length(in, bad);
    bad = pos + first_bad(in.substr(pos));
  }
  alt.append(in.substr(pos));
  return alt;
}

// Where to end a chunk of buf[0, n) that is not the end of its segment: after its last
// newline or whitespace; 0 when it has none (one token fills the whole buffer).
size_t chunk_cut(const char* buf, size_t n) {
  const void* nl = memrchr(buf, '\n', n);
  if (nl) return static_cast<size_t>(static_cast<const char*>(nl) - buf) + 1;
  for (size_t i = n; i > 0; --i)
    if (is_space(buf[i - 1])) return i;
  return 0;
}

// Note [Tokens longer than a buffer]: a chunk ends at whitespace, so no token is split
// between chunks - except one longer than a read buffer (corpus read_buffer_bytes, 4 MiB),
// which used to be cut into buffer-sized pieces that reached the vocabulary and the
// vectors as "words" (a 50 MB token became twelve), with corpus.max_token_bytes = 0
// meaning "no limit". Now such a token is an error naming file:byte when there is no
// limit; with a limit, the chunk keeps the token's first buffer (for_each_token truncates
// it to the limit, and the vocabulary counts the truncation) and the rest of the token,
// up to the next whitespace, is skipped: one truncated token, never pieces.
// The 1-based line of `path` that holds uncompressed byte `offset`: the error below names
// it as an editor would (a rank knows only byte offsets; counting the lines before it
// costs one read of the file up to there, paid only when there is an error to report).
uint64_t line_of(const std::string& path, uint64_t offset) {
  auto src = open_text_source(path);
  std::vector<char> buf(size_t{1} << 16);
  uint64_t line = 1, pos = 0;
  while (pos < offset) {
    const size_t got = src->read(buf.data(), static_cast<size_t>(std::min<uint64_t>(buf.size(), offset - pos)));
    if (got == 0) break;
    for (size_t i = 0; i < got; ++i) line += buf[i] == '\n';
    pos += got;
  }
  return line;
}

[[noreturn]] void throw_token_too_long(const std::string& path, uint64_t offset, size_t buffer) {
  throw DataError("a token longer than " + std::to_string(buffer) + " bytes (no whitespace) at " + path + ":" +
                  std::to_string(offset) + " (byte offset; line " + std::to_string(line_of(path, offset)) +
                  "); set corpus.max_token_bytes to truncate long tokens, or check that the file is text");
}

}  // namespace

struct CorpusShard::Reader {
  struct Slot { std::vector<char> data; std::string alt; };
  struct Item { int slot; TextChunk chunk; };

  const CorpusLayout& layout;
  CorpusOptions options;
  std::vector<std::pair<uint64_t, uint64_t>> ranges;
  Slot pool[kPoolSize];
  std::vector<char> carry;
  std::mutex mu;
  std::condition_variable cv;
  std::deque<Item> ready;
  std::vector<int> free_slots;
  bool finished = false;
  bool stop = false;
  std::exception_ptr error;
  std::atomic<uint64_t> replaced{0};
  std::thread thread;

  Reader(const CorpusLayout& l, const CorpusOptions& o, std::vector<std::pair<uint64_t, uint64_t>> r)
      : layout(l), options(o), ranges(std::move(r)) {
    size_t cap = std::max<size_t>(options.read_buffer_bytes, 64);
    for (int i = 0; i < kPoolSize; ++i) { pool[i].data.resize(cap); free_slots.push_back(i); }
    carry.reserve(cap);
    thread = std::thread([this] { run(); });
  }
  ~Reader() {
    { std::lock_guard lock(mu); stop = true; }
    cv.notify_all();
    thread.join();
  }

  void run() {
    try {
      for (auto [b, e] : ranges) {
        for (size_t f = layout.file_of(b); b < e; ++f) {
          const CorpusFile& file = layout.files()[f];
          uint64_t seg_end = std::min(e, file.begin + file.size);
          if (seg_end > b && !read_segment(f, b - file.begin, seg_end - file.begin)) return;
          b = std::max(b, seg_end);
        }
      }
    } catch (...) {
      std::lock_guard lock(mu);
      error = std::current_exception();
    }
    { std::lock_guard lock(mu); finished = true; }
    cv.notify_all();
  }

  int acquire() {
    std::unique_lock lock(mu);
    cv.wait(lock, [&] { return stop || !free_slots.empty(); });
    if (stop) return -1;
    int s = free_slots.back();
    free_slots.pop_back();
    return s;
  }

  // Reads and drops the rest of an over-long token, up to the next whitespace (kept in
  // `carry`) or fe; `skipped` grows by the bytes dropped.
  void skip_token_rest(TextSource& src, uint64_t fe, uint64_t& read_pos, uint64_t& skipped) {
    std::vector<char> scratch(size_t{64} << 10);
    while (read_pos < fe) {
      size_t want = static_cast<size_t>(std::min<uint64_t>(scratch.size(), fe - read_pos));
      size_t got = src.read(scratch.data(), want);
      if (got == 0)
        throw IoError("corpus file " + src.path() + " ended at byte " + std::to_string(read_pos) +
                      ", before its scanned size; was it changed while loom ran?");
      read_pos += got;
      size_t i = 0;
      while (i < got && !is_space(scratch[i])) ++i;
      skipped += i;
      if (i < got) {
        carry.assign(scratch.data() + i, scratch.data() + got);
        return;
      }
    }
  }

  // Reads file-local [fb, fe) of file f as chunks. False when told to stop.
  bool read_segment(size_t f, uint64_t fb, uint64_t fe) {
    const CorpusFile& file = layout.files()[f];
    auto src = open_text_source(file.path);
    bool continues = false;
    if (fb > 0) {
      char c = '\n';
      src->skip_to(fb - 1);
      if (src->read(&c, 1) != 1) throw IoError("corpus file " + file.path + " is shorter than scanned");
      continues = c != '\n';
    }
    carry.clear();
    uint64_t pos = fb, read_pos = fb;
    for (;;) {
      int s = acquire();
      if (s < 0) return false;
      std::vector<char>& buf = pool[s].data;
      size_t n = carry.size();
      std::memcpy(buf.data(), carry.data(), n);
      while (n < buf.size() && read_pos < fe) {
        size_t want = static_cast<size_t>(std::min<uint64_t>(buf.size() - n, fe - read_pos));
        size_t got = src->read(buf.data() + n, want);
        if (got == 0)
          throw IoError("corpus file " + file.path + " ended at byte " + std::to_string(read_pos) +
                        ", before its scanned size; was it changed while loom ran?");
        n += got;
        read_pos += got;
      }
      bool at_end = read_pos == fe;
      size_t cut = at_end ? n : chunk_cut(buf.data(), n);
      bool skip_rest = false;   // Note [Tokens longer than a buffer]
      if (cut == 0) {
        if (options.max_token_bytes == 0) throw_token_too_long(file.path, pos, buf.size());
        cut = utf8::truncate_at_boundary(std::string_view(buf.data(), n), n);
        if (cut == 0) cut = n;
        skip_rest = true;
      }
      bool open = at_end ? (fe < file.size && buf[n - 1] != '\n') : buf[cut - 1] != '\n';
      carry.assign(buf.data() + cut, buf.data() + n);
      uint64_t skipped = 0;
      if (skip_rest) {
        skipped = carry.size();
        carry.clear();
        skip_token_rest(*src, fe, read_pos, skipped);
      }
      uint64_t rep = 0;
      std::string_view text = apply_utf8(buf.data(), cut, options.utf8, pool[s].alt, file.path, pos, rep);
      replaced += rep;
      if (options.lowercase) utf8::lowercase_inplace(const_cast<char*>(text.data()), text.size());
      // The chunk ends after what was skipped, so the next one follows it with no gap: the
      // line goes on (a co-occurrence window spans the truncated token) and a cursor taken
      // after it resumes past the token, not inside it.
      TextChunk chunk{text, continues, open, f, file.begin + pos, file.begin + pos + cut + skipped};
      { std::lock_guard lock(mu); ready.push_back({s, chunk}); }
      cv.notify_all();
      continues = open;
      pos += cut + skipped;
      if ((at_end || read_pos == fe) && carry.empty()) return true;
    }
  }
};

void CorpusShard::start(std::vector<std::pair<uint64_t, uint64_t>> ranges) {
  ranges_ = std::move(ranges);
  position_ = ranges_.empty() ? 0 : ranges_.front().first;
  for (auto& [b, e] : ranges_) bytes_total_ += e - b;
  reader_.reset(new Reader(layout_, options_, ranges_));
}

CorpusShard::~CorpusShard() = default;
void CorpusShard::ReaderDeleter::operator()(Reader* r) const { delete r; }

uint64_t CorpusShard::replaced_sequences() const { return reader_->replaced.load(); }

bool CorpusShard::next(TextChunk& chunk) {
  Reader& r = *reader_;
  std::unique_lock lock(r.mu);
  if (in_use_ >= 0) { r.free_slots.push_back(in_use_); in_use_ = -1; r.cv.notify_all(); }
  r.cv.wait(lock, [&] { return !r.ready.empty() || r.finished; });
  if (r.ready.empty()) {
    if (r.error) std::rethrow_exception(r.error);
    return false;
  }
  Reader::Item item = r.ready.front();
  r.ready.pop_front();
  in_use_ = item.slot;
  chunk = item.chunk;
  bytes_done_ += chunk.end - chunk.begin;
  position_ = chunk.end;
  return true;
}

CorpusShard::Before CorpusShard::text_before(uint64_t g, size_t max_bytes) const {
  Before out;
  if (g == 0) return out;
  size_t f = layout_.file_of(g - 1);
  const CorpusFile& file = layout_.files()[f];
  uint64_t local = g - file.begin;
  uint64_t from = local > max_bytes ? local - max_bytes : 0;
  std::string raw = layout_.read_file_range(f, from, local);
  size_t nl = raw.rfind('\n');
  out.complete = nl != std::string::npos || from == 0;
  if (nl != std::string::npos) raw.erase(0, nl + 1);
  uint64_t ignored = 0;
  std::string alt;
  std::string_view text = apply_utf8(raw.data(), raw.size(), Utf8Policy::kReplace, alt,
                                     file.path, from, ignored);
  out.text.assign(text);
  if (options_.lowercase) utf8::lowercase_inplace(out.text.data(), out.text.size());
  return out;
}

}  // namespace loom
