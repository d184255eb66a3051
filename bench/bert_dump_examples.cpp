// Dumps loom's BERT pre-training examples (io/bert_examples.h) as .npy files, so that
// another tool (bench/bert_learn_torch.py: Hugging Face BertForPreTraining) trains and
// evaluates on exactly the examples `loom train` uses: the same pairs, order and masking.
//
//   bert_dump_examples TOKENS_DIR VOCAB_TXT OUT_DIR --split train|heldout --first I --count N
//                      [--seed 1] [--heldout-fraction 0.1] [--seq-len 128]
//                      [--max-predictions 20] [--masked-lm-prob 0.15] [--short-seq-prob 0.1]
//                      [--random-next-prob 0.5]
//
// TOKENS_DIR is a token-stage directory (manifest.txt + part-*.tokens, Note [Token stage] in
// launch/pipeline/token_stage.h: a run's RUN/tokens or `loom tokenize`'s tokens.dir); the
// parts are read in the manifest's order. The special ids ([PAD] [UNK] [CLS] [SEP] [MASK])
// are looked up by name in VOCAB_TXT and the vocabulary size is its line count. The splits
// are split_bert_examples' (training shuffled by seed, held-out in table order); global
// indices [I, I + N) of the split are written, count clamped to one epoch for held-out.
// The options must be the run's (run.seed, tokens.heldout_fraction, bert.seq_len, ...).
//
// OUT_DIR gets, little-endian, row i = global index I + i:
//   input_ids.npy     int32 (N, T)  [CLS] A [SEP] B [SEP] [PAD]..., after masking
//   segment_ids.npy   int32 (N, T)
//   lengths.npy       int32 (N)     tokens before [PAD] (the attention mask's ones)
//   mlm_positions.npy int32 (N, P)  ascending, 0 after the predictions
//   mlm_labels.npy    int32 (N, P)  original ids, -1 after the predictions
//   nsp_labels.npy    int32 (N)     0 IsNext, 1 NotNext
//   info.json         the options, the split's examples per epoch, documents, special ids
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "io/bert_examples.h"
#include "io/token_shard.h"
#include "io/token_windows.h"

namespace {

using loom::ConfigError;
using loom::DataError;
using loom::IoError;

const char* arg(int argc, char** argv, const char* name, const char* fallback) {
  for (int i = 1; i + 1 < argc; ++i)
    if (std::strcmp(argv[i], name) == 0) return argv[i + 1];
  return fallback;
}

// The parts named by DIR/manifest.txt, in order ("shard = NAME tokens=N documents=D").
std::shared_ptr<const loom::TokenStream> open_parts(const std::string& dir) {
  const std::string path = dir + "/manifest.txt";
  std::ifstream in(path);
  LOOM_CHECK(in.good(), IoError, path + ": cannot open (a token-stage directory holds one)");
  std::vector<loom::TokenShard> shards;
  std::string line;
  while (std::getline(in, line)) {
    char name[256];
    unsigned long long tokens = 0, documents = 0;
    if (std::sscanf(line.c_str(), "shard = %255s tokens=%llu documents=%llu", name, &tokens, &documents) != 3)
      continue;
    loom::TokenShard s = loom::TokenShard::open(dir + "/" + name);
    LOOM_CHECK(s.size() == tokens, DataError,
               s.path() + ": holds " + std::to_string(s.size()) + " tokens, " + path + " says " +
                   std::to_string(tokens));
    shards.push_back(std::move(s));
  }
  LOOM_CHECK(!shards.empty(), DataError, path + ": names no shard");
  return std::make_shared<const loom::TokenStream>(std::move(shards));
}

// vocab.txt: one token a line, the id is the line number.
loom::BertSpecialIds special_ids(const std::string& path, int32_t& vocab_size) {
  std::ifstream in(path);
  LOOM_CHECK(in.good(), IoError, path + ": cannot open");
  loom::BertSpecialIds s;
  std::string line;
  int32_t id = 0;
  for (; std::getline(in, line); ++id) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line == "[PAD]") s.pad = id;
    if (line == "[UNK]") s.unk = id;
    if (line == "[CLS]") s.cls = id;
    if (line == "[SEP]") s.sep = id;
    if (line == "[MASK]") s.mask = id;
  }
  vocab_size = id;
  for (int32_t v : {s.pad, s.unk, s.cls, s.sep, s.mask})
    LOOM_CHECK(v >= 0, DataError, path + ": lacks one of [PAD] [UNK] [CLS] [SEP] [MASK]");
  return s;
}

// NumPy's .npy, version 1.0: magic, header length, a dict padded to 64 bytes, the data.
void write_npy(const std::string& path, const std::vector<int32_t>& data, int64_t rows, int64_t cols) {
  std::string dict = "{'descr': '<i4', 'fortran_order': False, 'shape': (" + std::to_string(rows) +
                     (cols > 0 ? ", " + std::to_string(cols) + "), }" : ",), }");
  const size_t total = 10 + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict.push_back('\n');
  std::ofstream out(path, std::ios::binary);
  LOOM_CHECK(out.good(), IoError, path + ": cannot create");
  const uint16_t header_len = static_cast<uint16_t>(dict.size());
  out.write("\x93NUMPY\x01\x00", 8);
  out.put(char(header_len & 0xff)).put(char(header_len >> 8));
  out << dict;
  out.write(reinterpret_cast<const char*>(data.data()), std::streamsize(data.size() * sizeof(int32_t)));
  out.flush();
  LOOM_CHECK(out.good(), IoError, path + ": write failed");
}

int run(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr,
                 "usage: bert_dump_examples TOKENS_DIR VOCAB_TXT OUT_DIR --split train|heldout --first I "
                 "--count N [--seed 1] [--heldout-fraction 0.1] [--seq-len 128] [--max-predictions 20] "
                 "[--masked-lm-prob 0.15] [--short-seq-prob 0.1] [--random-next-prob 0.5]\n");
    return 2;
  }
  const std::string dir = argv[1], vocab = argv[2], out_dir = argv[3];
  const std::string split = arg(argc, argv, "--split", "train");
  LOOM_CHECK(split == "train" || split == "heldout", ConfigError, "--split: train or heldout, not " + split);
  const int64_t first = std::atoll(arg(argc, argv, "--first", "0"));
  int64_t count = std::atoll(arg(argc, argv, "--count", "0"));
  LOOM_CHECK(first >= 0 && count >= 0, ConfigError, "--first and --count: >= 0");
  loom::BertDataOptions o;
  o.seed = std::strtoull(arg(argc, argv, "--seed", "1"), nullptr, 10);
  o.max_seq_len = std::atoll(arg(argc, argv, "--seq-len", "128"));
  o.max_predictions_per_seq = std::atoll(arg(argc, argv, "--max-predictions", "20"));
  o.masked_lm_prob = std::atof(arg(argc, argv, "--masked-lm-prob", "0.15"));
  o.short_seq_prob = std::atof(arg(argc, argv, "--short-seq-prob", "0.1"));
  o.random_next_prob = std::atof(arg(argc, argv, "--random-next-prob", "0.5"));
  o.special = special_ids(vocab, o.vocab_size);
  const double heldout_fraction = std::atof(arg(argc, argv, "--heldout-fraction", "0.1"));

  loom::BertSplits splits = loom::split_bert_examples(open_parts(dir), heldout_fraction, o);
  LOOM_CHECK(split == "train" || splits.heldout.has_value(), ConfigError,
             "--split heldout with --heldout-fraction 0: there is no held-out split");
  const loom::BertExamples& ex = split == "train" ? splits.train : *splits.heldout;
  if (split == "heldout") count = std::max<int64_t>(0, std::min(count, ex.examples_per_epoch() - first));

  const int64_t T = o.max_seq_len, P = o.max_predictions_per_seq;
  const auto n = static_cast<size_t>(count);
  std::vector<int32_t> ids(n * size_t(T)), segments(n * size_t(T)), lengths(n);
  std::vector<int32_t> positions(n * size_t(P)), labels(n * size_t(P)), nsp(n);
  loom::BertExample e(o);
#pragma omp parallel for schedule(static) firstprivate(e)
  for (int64_t i = 0; i < count; ++i) {
    ex.example(first + i, e);
    std::copy(e.input_ids.begin(), e.input_ids.end(), ids.begin() + i * T);
    std::copy(e.segment_ids.begin(), e.segment_ids.end(), segments.begin() + i * T);
    std::copy(e.mlm_positions.begin(), e.mlm_positions.end(), positions.begin() + i * P);
    std::copy(e.mlm_labels.begin(), e.mlm_labels.end(), labels.begin() + i * P);
    lengths[size_t(i)] = int32_t(e.length);
    nsp[size_t(i)] = e.nsp_label;
  }
  std::filesystem::create_directories(out_dir);
  write_npy(out_dir + "/input_ids.npy", ids, count, T);
  write_npy(out_dir + "/segment_ids.npy", segments, count, T);
  write_npy(out_dir + "/lengths.npy", lengths, count, 0);
  write_npy(out_dir + "/mlm_positions.npy", positions, count, P);
  write_npy(out_dir + "/mlm_labels.npy", labels, count, P);
  write_npy(out_dir + "/nsp_labels.npy", nsp, count, 0);
  std::ostringstream info;
  info << "{\"split\": \"" << split << "\", \"first\": " << first << ", \"count\": " << count
       << ", \"examples_per_epoch\": " << ex.examples_per_epoch() << ", \"documents\": " << ex.documents()
       << ", \"train_examples_per_epoch\": " << splits.train.examples_per_epoch()
       << ", \"heldout_examples_per_epoch\": " << (splits.heldout ? splits.heldout->examples_per_epoch() : 0)
       << ", \"stream_tokens\": " << ex.stream().size() << ", \"split_token\": " << splits.split
       << ", \"seed\": " << o.seed << ", \"heldout_fraction\": " << heldout_fraction
       << ", \"seq_len\": " << T << ", \"max_predictions\": " << P << ", \"vocab_size\": " << o.vocab_size
       << ", \"special\": {\"pad\": " << o.special.pad << ", \"unk\": " << o.special.unk
       << ", \"cls\": " << o.special.cls << ", \"sep\": " << o.special.sep << ", \"mask\": " << o.special.mask
       << "}}\n";
  std::ofstream(out_dir + "/info.json") << info.str();
  std::printf("%s", info.str().c_str());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bert_dump_examples: %s\n", e.what());
    return 1;
  }
}
