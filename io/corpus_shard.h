#pragma once
// CorpusShard: the byte range of a corpus that one rank reads (DESIGN.md, io/).
//
// The corpus is the concatenation of its files' uncompressed bytes in path order (the
// "global" byte space). Rank r of W nominally owns [total*r/W, total*(r+1)/W); both ends
// are moved forward to the next boundary (Note [Shard boundaries]), so the ranks' ranges
// tile the corpus and every line (or long-line piece) is read by exactly one rank.
//
// Note [Shard boundaries]
// align(g) is the first line start at or after g, looked for within max_line_bytes; a line
// longer than that (text8 is one 100 MB line) is cut at the first token start (whitespace
// followed by non-whitespace) at or after g. A file start is always a boundary, and a file
// end always ends a line. align() depends only on the bytes and the options, never on the
// world size, so every rank computes the same boundaries.
//
// Reading runs on a background thread (read-ahead overlapped with the caller's work) into
// a fixed pool of buffers: memory is bounded by 3 * read_buffer_bytes whatever the file.
// Chunks end at a line end when the buffer holds one, else after whitespace; a token
// longer than the buffer is an error, or truncated with max_token_bytes set (Note [Tokens
// longer than a buffer] in corpus_reader.cpp).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace loom {

class Communicator;

enum class Utf8Policy : uint8_t {
  kError,    // invalid UTF-8 throws DataError naming file:byte
  kReplace,  // each invalid sequence becomes U+FFFD and is counted
};

struct CorpusOptions {
  std::vector<std::string> paths;        // files, directories (recursive, sorted), globs
  bool lowercase = false;                // Unicode-aware simple lower-casing (io/utf8.h)
  size_t max_token_bytes = 0;            // 0: no limit (up to read_buffer_bytes); longer tokens are truncated
  size_t max_line_bytes = size_t{1} << 20;    // see Note [Shard boundaries]
  Utf8Policy utf8 = Utf8Policy::kError;
  size_t read_buffer_bytes = size_t{4} << 20; // per buffer; 3 buffers per shard
};

struct CorpusFile {
  std::string path;
  uint64_t size = 0;    // uncompressed bytes
  uint64_t begin = 0;   // global offset of its first byte
};

// The files of a corpus and their sizes. Immutable once built.
class CorpusLayout {
 public:
  // Resolves options.paths and sizes every file. Collective: compressed files are decoded
  // to count their bytes, each by one rank, and the sizes are summed over the world.
  static CorpusLayout scan(Communicator& comm, const CorpusOptions& options);
  // The same on one process (tests, tools).
  static CorpusLayout scan_local(const CorpusOptions& options);

  const std::vector<CorpusFile>& files() const { return files_; }
  uint64_t total_bytes() const { return total_; }
  // The file holding global byte g (g < total_bytes()); empty files hold none.
  size_t file_of(uint64_t g) const;
  // Note [Shard boundaries].
  uint64_t align(uint64_t g, size_t max_line_bytes) const;
  // Raw bytes [begin, end) of one file (both inside file `file`).
  std::string read_file_range(size_t file, uint64_t begin, uint64_t end) const;

 private:
  std::vector<CorpusFile> files_;
  uint64_t total_ = 0;
};

// Files, directories and globs of `paths`, expanded and sorted; IoError names a path that
// does not exist or a glob that matches nothing.
std::vector<std::string> resolve_corpus_paths(const std::vector<std::string>& paths);

// Where a rank is and what it has left, storable in a checkpoint as integers.
// Positions are (file index, byte offset in that file's uncompressed bytes).
struct CorpusCursor {
  struct Range {
    uint64_t begin_file = 0, begin_byte = 0;   // next byte to read
    uint64_t end_file = 0, end_byte = 0;       // one past the last byte to read
  };
  std::vector<Range> ranges;   // in corpus order; one unless re-split

  // [n_ranges, then 4 words per range].
  std::vector<uint64_t> to_words() const;
  static CorpusCursor from_words(std::span<const uint64_t> words);   // DataError if malformed
  bool operator==(const CorpusCursor& other) const;
};

// A piece of text handed to the caller. `text` is valid until the next call to next().
struct TextChunk {
  std::string_view text;     // after UTF-8 policy and lower-casing
  bool continues_line = false;  // text[0] is inside a line that began before this chunk
  bool line_open = false;       // the last line goes on after this chunk
  size_t file = 0;              // file index
  uint64_t begin = 0;           // global offset of the chunk's first source byte
  uint64_t end = 0;             // global offset one past its last source byte (with the skipped
                                // rest of a truncated over-long token: the next chunk begins there)
};

class CorpusShard {
 public:
  // The shard of (rank, world) from the start.
  CorpusShard(const CorpusLayout& layout, const CorpusOptions& options, int rank, int world);
  // Resumes exactly at `cursor` (from cursor() of an earlier run, or resplit()).
  CorpusShard(const CorpusLayout& layout, const CorpusOptions& options, const CorpusCursor& cursor);
  ~CorpusShard();
  CorpusShard(const CorpusShard&) = delete;
  CorpusShard& operator=(const CorpusShard&) = delete;

  // The next chunk, or false at the end of the shard. Rethrows the reader's errors.
  bool next(TextChunk& chunk);
  // Position after the last chunk returned by next().
  CorpusCursor cursor() const;
  uint64_t bytes_total() const { return bytes_total_; }
  uint64_t bytes_done() const { return bytes_done_; }
  // Invalid sequences replaced so far (Utf8Policy::kReplace).
  uint64_t replaced_sequences() const;

  // Up to max_bytes of processed text that precede global offset g in its file, starting
  // no earlier than the line start. `complete` is false when the text was cut short (its
  // first token may be partial). Used for the context of a shard that starts mid-line.
  struct Before { std::string text; bool complete = true; };
  Before text_before(uint64_t g, size_t max_bytes) const;

  // Rank new_rank's part of the work that `all` (every old rank's cursor, in rank order)
  // has left, split into new_world parts of nearly equal bytes at aligned boundaries.
  static CorpusCursor resplit(const CorpusLayout& layout, const CorpusOptions& options,
                              std::span<const CorpusCursor> all, int new_rank, int new_world);

 private:
  struct Reader;
  struct ReaderDeleter { void operator()(Reader* r) const; };
  void start(std::vector<std::pair<uint64_t, uint64_t>> ranges);
  const CorpusLayout& layout_;
  CorpusOptions options_;
  std::vector<std::pair<uint64_t, uint64_t>> ranges_;   // global [begin, end), in order
  uint64_t position_ = 0;      // global offset after the last chunk returned
  size_t range_index_ = 0;     // range holding position_
  uint64_t bytes_total_ = 0;
  uint64_t bytes_done_ = 0;
  std::unique_ptr<Reader, ReaderDeleter> reader_;
  int in_use_ = -1;            // pool slot of the chunk last returned
};

}  // namespace loom
