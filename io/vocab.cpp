#include "io/vocab.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <exception>
#include <fstream>
#include <thread>

#include "core/error.h"
#include "core/log.h"
#include "core/tensor.h"
#include "core/work_meter.h"
#include "dist/communicator.h"
#include "io/tokenize.h"

namespace loom {

uint64_t hash_token(std::string_view token) {
  // 8 bytes at a time, multiply-xorshift mixing (a wyhash-like construction).
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ token.size();
  const char* p = token.data();
  size_t n = token.size();
  while (n >= 8) {
    uint64_t w;
    std::memcpy(&w, p, 8);
    h = (h ^ w) * 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 31;
    p += 8;
    n -= 8;
  }
  uint64_t w = 0;
  std::memcpy(&w, p, n);
  h = (h ^ w) * 0x94D049BB133111EBULL;
  h ^= h >> 29;
  h *= 0xBF58476D1CE4E5B9ULL;
  return h ^ (h >> 32);
}

TokenCounter::TokenCounter() : slots_(1024) {}

void TokenCounter::add(std::string_view token, int64_t count) {
  uint64_t h = hash_token(token);
  size_t mask = slots_.size() - 1;
  for (size_t i = h & mask;; i = (i + 1) & mask) {
    Slot& s = slots_[i];
    if (s.count == 0) {
      s = {h, arena_.size(), static_cast<uint32_t>(token.size()), count};
      arena_.insert(arena_.end(), token.begin(), token.end());
      if (++size_ * 2 > slots_.size()) grow();
      return;
    }
    if (s.hash == h && s.length == token.size() &&
        std::memcmp(arena_.data() + s.offset, token.data(), token.size()) == 0) {
      s.count += count;
      return;
    }
  }
}

void TokenCounter::grow() {
  std::vector<Slot> old(slots_.size() * 2);
  old.swap(slots_);
  size_t mask = slots_.size() - 1;
  for (const Slot& s : old) {
    if (s.count == 0) continue;
    size_t i = s.hash & mask;
    while (slots_[i].count != 0) i = (i + 1) & mask;
    slots_[i] = s;
  }
}

Vocab::Vocab(std::vector<std::string> tokens, std::vector<int64_t> counts)
    : tokens_(std::move(tokens)), counts_(std::move(counts)) {
  LOOM_ASSERT(tokens_.size() == counts_.size());
  size_t cap = 16;
  while (cap < tokens_.size() * 2) cap *= 2;
  index_.assign(cap, -1);
  for (size_t id = 0; id < tokens_.size(); ++id) {
    size_t i = hash_token(tokens_[id]) & (cap - 1);
    while (index_[i] >= 0) i = (i + 1) & (cap - 1);
    index_[i] = static_cast<int32_t>(id);
  }
}

int32_t Vocab::find(std::string_view token) const {
  if (index_.empty()) return -1;
  size_t mask = index_.size() - 1;
  for (size_t i = hash_token(token) & mask;; i = (i + 1) & mask) {
    int32_t id = index_[i];
    if (id < 0) return -1;
    if (tokens_[static_cast<size_t>(id)] == token) return id;
  }
}

namespace {

// Entries serialised as [u32 length][bytes][i64 count].
void append_entry(std::vector<uint8_t>& out, std::string_view token, int64_t count) {
  uint32_t len = static_cast<uint32_t>(token.size());
  size_t at = out.size();
  out.resize(at + 4 + len + 8);
  std::memcpy(out.data() + at, &len, 4);
  std::memcpy(out.data() + at + 4, token.data(), len);
  std::memcpy(out.data() + at + 4 + len, &count, 8);
}

template <typename F>
void parse_entries(const uint8_t* p, size_t n, F&& f) {
  const uint8_t* end = p + n;
  while (p < end) {
    uint32_t len;
    int64_t count;
    std::memcpy(&len, p, 4);
    std::memcpy(&count, p + 4 + len, 8);
    f(std::string_view(reinterpret_cast<const char*>(p + 4), len), count);
    p += 4 + len + 8;
  }
}

std::vector<int64_t> gather_sizes(Communicator& comm, int64_t mine) {
  std::vector<int64_t> all(static_cast<size_t>(comm.size()));
  comm.allgather(Tensor::of(&mine, 1), Tensor::of(all.data(), comm.size()));
  return all;
}

// Sends each rank the counts of the tokens it owns (hash % size); returns them summed.
TokenCounter exchange_counts(Communicator& comm, const TokenCounter& local) {
  size_t world = static_cast<size_t>(comm.size());
  std::vector<std::vector<uint8_t>> parts(world);
  local.for_each([&](std::string_view t, int64_t c) { append_entry(parts[hash_token(t) % world], t, c); });
  std::vector<uint8_t> send;
  std::vector<int64_t> send_counts(world), recv_counts(world);
  for (size_t q = 0; q < world; ++q) {
    send_counts[q] = static_cast<int64_t>(parts[q].size());
    send.insert(send.end(), parts[q].begin(), parts[q].end());
  }
  std::vector<int64_t> matrix(world * world);   // matrix[src * world + dst]
  comm.allgather(Tensor::of(send_counts.data(), static_cast<int64_t>(world)),
                 Tensor::of(matrix.data(), static_cast<int64_t>(world * world)));
  int64_t recv_total = 0;
  for (size_t q = 0; q < world; ++q) {
    recv_counts[q] = matrix[q * world + static_cast<size_t>(comm.rank())];
    recv_total += recv_counts[q];
  }
  std::vector<uint8_t> recv(static_cast<size_t>(recv_total));
  comm.alltoallv(Tensor::of(send.data(), static_cast<int64_t>(send.size())), send_counts,
                 Tensor::of(recv.data(), recv_total), recv_counts);
  TokenCounter merged;
  parse_entries(recv.data(), recv.size(), [&](std::string_view t, int64_t c) { merged.add(t, c); });
  return merged;
}

// Counts the rank's shard with `threads` threads (sub-shards rank * threads + t of
// world * threads, which tile the rank's shard); counts[0] += tokens, counts[2] += replaced,
// counts[3] += tokens truncated to corpus.max_token_bytes (cut here, where they are counted,
// rather than inside for_each_token).
TokenCounter count_local(const CorpusLayout& layout, const CorpusOptions& corpus, int rank, int world,
                         int threads, int64_t* counts) {
  std::vector<TokenCounter> local(static_cast<size_t>(threads));
  std::vector<int64_t> tokens(static_cast<size_t>(threads), 0), replaced(static_cast<size_t>(threads), 0);
  std::vector<int64_t> truncated(static_cast<size_t>(threads), 0);
  const size_t limit = corpus.max_token_bytes;
  std::vector<std::exception_ptr> errors(static_cast<size_t>(threads));
  auto body = [&](size_t t) {
    try {
      CorpusShard shard(layout, corpus, rank * threads + static_cast<int>(t), world * threads);
      work_meter::add_total(static_cast<int64_t>(shard.bytes_total()));
      TextChunk chunk;
      TokenCounter& mine = local[t];
      int64_t seen = 0, cut = 0;   // not tokens[t] per token: the threads' counts share a cache line
      auto add = [&](std::string_view tok) {
        if (limit != 0 && tok.size() > limit) {
          tok = tok.substr(0, utf8::truncate_at_boundary(tok, limit));
          ++cut;
          if (tok.empty()) return;
        }
        mine.add(tok);
        ++seen;
      };
      while (shard.next(chunk)) {
        for_each_token(chunk.text, 0, add, [] {});
        work_meter::advance(static_cast<int64_t>(chunk.end - chunk.begin));
      }
      tokens[t] = seen;
      truncated[t] = cut;
      replaced[t] = static_cast<int64_t>(shard.replaced_sequences());
    } catch (...) {
      errors[t] = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  for (size_t t = 1; t < local.size(); ++t) pool.emplace_back(body, t);
  body(0);
  for (auto& th : pool) th.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  for (size_t t = 0; t < local.size(); ++t) {
    if (t > 0) local[t].for_each([&](std::string_view tok, int64_t c) { local[0].add(tok, c); });
    counts[0] += tokens[t];
    counts[2] += replaced[t];
    counts[3] += truncated[t];
  }
  return std::move(local[0]);
}

}  // namespace

Vocab build_vocab(Communicator& comm, const CorpusLayout& layout, const CorpusOptions& corpus,
                  const VocabOptions& options, VocabStats* stats) {
  auto t0 = std::chrono::steady_clock::now();
  // The threads come from run.threads (0 = every core of the rank), which has no upper bound.
  LOOM_ASSERT(options.threads >= 1, "VocabOptions: threads must be >= 1");
  LOOM_CHECK(options.threads <= 256, ConfigError,
             "run.threads: counting the vocabulary takes at most 256 threads per rank, got " +
                 std::to_string(options.threads) +
                 " (run.threads = 0 takes every core of the rank; set run.threads to at most 256)");
  int64_t tokens[4] = {0, 0, 0, 0};   // tokens, distinct (set below), replaced, truncated
  TokenCounter local = count_local(layout, corpus, comm.rank(), comm.size(), options.threads, tokens);
  TokenCounter owned = exchange_counts(comm, local);
  tokens[1] = static_cast<int64_t>(owned.size());
  std::vector<uint8_t> kept;
  owned.for_each([&](std::string_view t, int64_t c) {
    if (c >= options.min_count) append_entry(kept, t, c);
  });
  std::vector<int64_t> sizes = gather_sizes(comm, static_cast<int64_t>(kept.size()));
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  std::vector<uint8_t> all(static_cast<size_t>(total));
  comm.allgatherv(Tensor::of(kept.data(), static_cast<int64_t>(kept.size())),
                  Tensor::of(all.data(), total), sizes);
  comm.allreduce(Tensor::of(tokens, 4), ReduceOp::kSum);
  std::vector<std::pair<int64_t, std::string>> entries;
  parse_entries(all.data(), all.size(), [&](std::string_view t, int64_t c) { entries.emplace_back(-c, t); });
  std::sort(entries.begin(), entries.end());   // count descending, then bytes ascending
  if (options.max_vocab > 0 && entries.size() > static_cast<size_t>(options.max_vocab))
    entries.resize(static_cast<size_t>(options.max_vocab));
  std::vector<std::string> words;
  std::vector<int64_t> counts;
  for (auto& [c, t] : entries) { words.push_back(std::move(t)); counts.push_back(-c); }
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  log::info("vocab", std::to_string(tokens[0]) + " tokens, " + std::to_string(tokens[1]) +
                         " distinct, kept " + std::to_string(words.size()) + " in " +
                         std::to_string(secs) + " s" +
                         (tokens[2] ? ", " + std::to_string(tokens[2]) + " invalid UTF-8 sequences replaced" : ""));
  if (stats) *stats = {tokens[0], tokens[1], static_cast<uint64_t>(tokens[2]), secs, tokens[3]};
  return Vocab(std::move(words), std::move(counts));
}

Vocab build_vocab(Communicator& comm, const CorpusOptions& corpus, const VocabOptions& options) {
  CorpusLayout layout = CorpusLayout::scan(comm, corpus);
  return build_vocab(comm, layout, corpus, options);
}

void write_vocab_txt(const Vocab& vocab, const std::string& path) {
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw IoError("cannot create " + tmp + ": " + std::strerror(errno));
    for (int32_t id = 0; id < vocab.size(); ++id)
      out << vocab.token(id) << ' ' << vocab.count(id) << '\n';
    out.flush();
    if (!out) throw IoError("write failed for " + tmp + " (disk full?)");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    throw IoError("cannot rename " + tmp + " to " + path + ": " + std::strerror(errno));
}

Vocab read_vocab_txt(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw IoError("cannot open vocabulary " + path + ": " + std::strerror(errno));
  std::vector<std::string> tokens;
  std::vector<int64_t> counts;
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    size_t sp = line.rfind(' ');
    char* end = nullptr;
    long long c = sp == std::string::npos ? 0 : std::strtoll(line.c_str() + sp + 1, &end, 10);
    if (sp == std::string::npos || sp == 0 || end == line.c_str() + sp + 1 || *end != '\0')
      throw DataError("malformed vocabulary line at " + path + ":" + std::to_string(n) +
                      " (want 'token count')");
    tokens.push_back(line.substr(0, sp));
    counts.push_back(c);
  }
  return Vocab(std::move(tokens), std::move(counts));
}

}  // namespace loom
