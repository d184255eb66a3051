// How long BertExamples takes to build its table over a corpus the size of the enwiki
// benchmark text (26 M WordPiece tokens), how much memory the table and the build take,
// and how fast example() is. Not a test (no asserts on time); run by hand:
//   bert_examples_bench write DIR [TOKENS]   synthesize DIR/part-{0,1}.tokens
//   bert_examples_bench build DIR            build, report (a fresh process: its peak RSS
//                                            is the build's, plus the mapped shard pages)
// The synthetic stream: 6,402 documents (enwiki-raw100m's article count), sentences of
// 5..50 WordPiece ids (mean 27.5), vocabulary 30522 with BERT's special ids, in two shards.
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/bert_examples.h"
#include "io/token_shard.h"

namespace {

constexpr uint32_t kVocab = 30522;
constexpr loom::BertSpecialIds kSpecial{0, 100, 101, 102, 103};
constexpr int kDocuments = 6402;

// A /proc/self/status field in kB ("VmHWM", "RssAnon", "RssFile").
long status_kb(const std::string& field) {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line))
    if (line.rfind(field + ":", 0) == 0) return std::strtol(line.c_str() + field.size() + 1, nullptr, 10);
  return -1;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

int write(const std::string& dir, uint64_t tokens) {
  std::mt19937_64 gen(1);
  const uint64_t per_doc = tokens / kDocuments;
  uint64_t written = 0;
  for (int s = 0; s < 2; ++s) {
    loom::TokenShardWriter w(dir + "/part-" + std::to_string(s) + ".tokens", kVocab, 7);
    std::vector<uint32_t> doc;
    for (int d = s * kDocuments / 2; d < (s + 1) * kDocuments / 2; ++d) {
      doc.clear();
      while (doc.size() < per_doc) {
        const int len = 5 + static_cast<int>(gen() % 46);
        for (int k = 0; k < len; ++k) doc.push_back(999 + static_cast<uint32_t>(gen() % (kVocab - 999)));
        doc.push_back(static_cast<uint32_t>(kSpecial.sep));
      }
      doc.push_back(static_cast<uint32_t>(kSpecial.cls));
      w.append(doc);
      w.add_documents(1);
      written += doc.size();
    }
    w.commit();
  }
  std::printf("wrote %llu tokens in %d documents to %s/part-{0,1}.tokens\n",
              static_cast<unsigned long long>(written), kDocuments, dir.c_str());
  return 0;
}

int build(const std::string& dir) {
  std::vector<loom::TokenShard> shards;
  for (int s = 0; s < 2; ++s)
    shards.push_back(loom::TokenShard::open(dir + "/part-" + std::to_string(s) + ".tokens"));
  auto stream = std::make_shared<const loom::TokenStream>(std::move(shards));
  const long hwm_before = status_kb("VmHWM");
  loom::BertDataOptions o;
  o.max_seq_len = 128;
  o.seed = 1;
  o.vocab_size = static_cast<int32_t>(kVocab);
  o.special = kSpecial;
  auto t0 = std::chrono::steady_clock::now();
  const loom::BertSplits splits = loom::split_bert_examples(stream, 0.01, o);
  const double build_s = seconds_since(t0);
  const loom::BertExamples& train = splits.train;
  std::printf("stream: %llu tokens, %lld + %lld documents, %lld + %lld sentences\n",
              static_cast<unsigned long long>(stream->size()),
              static_cast<long long>(train.documents()),
              static_cast<long long>(splits.heldout->documents()),
              static_cast<long long>(train.sentences()),
              static_cast<long long>(splits.heldout->sentences()));
  std::printf("build (training + 1%% held-out tables, max_seq_len 128): %.3f s, %lld + %lld "
              "instances, tables %.2f MB\n",
              build_s, static_cast<long long>(train.examples_per_epoch()),
              static_cast<long long>(splits.heldout->examples_per_epoch()),
              static_cast<double>(train.table_bytes() + splits.heldout->table_bytes()) / 1e6);
  std::printf("memory: peak RSS %.1f MB before the build, %.1f MB after (RssAnon %.1f MB, "
              "RssFile %.1f MB = the mapped shards read by the scan)\n",
              static_cast<double>(hwm_before) / 1e3, static_cast<double>(status_kb("VmHWM")) / 1e3,
              static_cast<double>(status_kb("RssAnon")) / 1e3,
              static_cast<double>(status_kb("RssFile")) / 1e3);
  loom::BertExample e(o);
  constexpr int64_t kExamples = 200000;
  int64_t checksum = 0;
  t0 = std::chrono::steady_clock::now();
  for (int64_t g = 0; g < kExamples; ++g) {
    train.example(g * 7919, e);   // scattered over epochs
    checksum += e.length + e.input_ids[1];
  }
  const double ex_s = seconds_since(t0);
  std::printf("example(): %.2f us each on one thread (%lld examples, checksum %lld)\n",
              1e6 * ex_s / static_cast<double>(kExamples), static_cast<long long>(kExamples),
              static_cast<long long>(checksum));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 2 ? argv[1] : "";
  try {
    if (mode == "write") return write(argv[2], argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 26000000);
    if (mode == "build") return build(argv[2]);
  } catch (const loom::Error& err) {
    std::fprintf(stderr, "bert_examples_bench: %s\n", err.what());
    return err.exit_code();
  }
  std::fprintf(stderr, "usage: %s write DIR [TOKENS] | build DIR\n", argv[0]);
  return 2;
}
