#pragma once
// The config schema: one table per section, each row one key (name, type, default, range
// or allowed values, help). The table generates both the typed struct field (config.h)
// and the schema record that the loader, the TOML writer and `loom config --describe`
// walk (config.cpp). There is no second list to keep in sync.
//
// Adding a key: add one row to its section's table below.
// A model kind's own section ([glove], [word2vec]) is not here: it is declared with the
// kind in launch/kinds/ (Note [Model sections] in model_sections.h).
// Adding an engine section (e.g. [eval]):
//   1. write `#define LOOM_CONFIG_EVAL(X_BOOL, X_INT, X_REAL, X_STR, X_ENUM, X_LIST) ...`
//      with one row per key, in the order they should be printed;
//   2. add one line `X(eval, EvalSection, LOOM_CONFIG_EVAL, "help")` to
//      LOOM_CONFIG_SECTIONS. That defines `struct EvalSection`, the member
//      `Config::eval`, its schema record, its TOML output and its --describe rows.
//
// Row forms (the key is a bare identifier; it is the TOML key and the struct member):
//   X_BOOL(key, default, help)                         bool
//   X_INT (key, default, range, help)                  std::int64_t
//   X_REAL(key, default, range, help)                  double (integers are accepted too)
//   X_STR (key, default, help)                         std::string
//   X_ENUM(key, default, "a|b|c", help)                std::string, one of the allowed values
//   X_LIST(key, default, help)                         std::vector<std::string>; write the
//                                                      default `{}` or in parentheses:
//                                                      `(std::vector<std::string>{"a", "b"})`
// A range is built by one of the ConfigRange functions below; each says whether its
// bounds are inclusive ([ ]) or exclusive (( )).
#include <cstdint>
#include <string>
#include <variant>
#include <vector>

namespace loom {

// Allowed interval of a numeric key. Bounds are stored as double: every bound loom uses
// is an integer below 2^53, so the comparison with an int64 value is exact.
struct ConfigRange {
  bool has_lo = false;
  bool lo_open = false;  // true: value > lo; false: value >= lo
  double lo = 0;
  bool has_hi = false;
  bool hi_open = false;  // true: value < hi; false: value <= hi
  double hi = 0;

  static constexpr ConfigRange any() { return {}; }
  static constexpr ConfigRange at_least(double lo) { return {true, false, lo, false, false, 0}; }  // [lo, inf)
  static constexpr ConfigRange above(double lo) { return {true, true, lo, false, false, 0}; }      // (lo, inf)
  static constexpr ConfigRange between(double lo, double hi) {                                     // [lo, hi]
    return {true, false, lo, true, false, hi};
  }
  static constexpr ConfigRange above_at_most(double lo, double hi) {                               // (lo, hi]
    return {true, true, lo, true, false, hi};
  }
};

// Every key that sets threads per rank (run.threads, glove.threads, word2vec.threads) has
// this one range [0, kMaxThreadsPerRank], so `config --describe` shows what `train`
// accepts and a refusal names the key that was set: co-occurrence counting keeps a table
// per thread and caps them at 256 (models/glove/cooccur_build.cpp), and word2vec keys
// its threads' RNG streams below 4096 per rank.
inline constexpr int kMaxThreadsPerRank = 256;

// ---- [run] ----------------------------------------------------------------------------
#define LOOM_CONFIG_RUN(X_BOOL, X_INT, X_REAL, X_STR, X_ENUM, X_LIST)                            \
  X_STR(name, "loom", "run name; fills {name} in run.dir")                                        \
  X_STR(dir, "runs/loom",                                                                          \
        "run directory; placeholders {name} (run.name) and {job} (SLURM job id, else 'local') "   \
        "are expanded")                                                                            \
  X_INT(seed, 1234, ConfigRange::at_least(0), "base seed; RNG streams derive from (seed, rank, purpose)") \
  X_INT(threads, 0, ConfigRange::between(0, kMaxThreadsPerRank), "CPU threads per rank; 0 = all cores")              \
  X_ENUM(device, "cpu", "cpu|cuda",                                                               \
         "where gpt and bert train: cpu, or cuda = one GPU per rank, picked from the local rank "  \
         "(needs a CUDA build and a visible GPU; gradients over NCCL; checkpoints stay float32 "   \
         "host data, so a GPU run resumes on the CPU and back)")                                  \
  X_ENUM(log_level, "info", "debug|info|warn|error", "lowest log level printed")               \
  X_BOOL(log_all_ranks, false,                                                                    \
         "every rank prints its info and debug lines, not only rank 0 (warnings and errors "      \
         "always come from every rank); for debugging one rank - N ranks repeat each line N times") \
  X_BOOL(hugepages, true,                                                                         \
         "host buffers of 4 MiB and more (the parameter tables) are 2 MiB-aligned and advised "   \
         "onto transparent huge pages: fewer TLB misses on random row access (GloVe +20 %); "     \
         "false to measure the gain, or where memory is tight (a huge page is committed whole)")

// ---- [comm] ---------------------------------------------------------------------------
#define LOOM_CONFIG_COMM(X_BOOL, X_INT, X_REAL, X_STR, X_ENUM, X_LIST)                           \
  X_REAL(timeout_s, 600.0, ConfigRange::above_at_most(0, 604800),                                 \
         "deadline in seconds of a blocking collective; the watchdog aborts the job after it")   \
  X_BOOL(peer_memory, true,                                                                       \
         "ranks on one host sum the embedding replicas by reading each other's memory directly "  \
         "(Linux cross-memory attach; falls back to MPI allreduce by itself where refused); "     \
         "false keeps MPI: to compare the two, or where no process of this user may be allowed "  \
         "to read this one (it declares them permitted tracers)")

// ---- [status] -------------------------------------------------------------------------
#define LOOM_CONFIG_STATUS(X_BOOL, X_INT, X_REAL, X_STR, X_ENUM, X_LIST)                         \
  X_INT(port, -1, ConfigRange::between(-1, 65535),                                                \
        "status server port: -1 = off, 0 = an ephemeral port (printed), else this port")         \
  X_STR(bind, "127.0.0.1", "address the status server listens on")

// ---- [progress] -----------------------------------------------------------------------
#define LOOM_CONFIG_PROGRESS(X_BOOL, X_INT, X_REAL, X_STR, X_ENUM, X_LIST)                       \
  X_REAL(interval_s, 10.0, ConfigRange::above(0),                                                 \
         "seconds between plain progress lines when stderr is not a terminal")                   \
  X_ENUM(bar, "auto", "auto|on|off", "progress bar: auto = only on a terminal")                   \
  X_INT(metrics_every, 1, ConfigRange::at_least(1), "write a metrics.jsonl line every N steps")

// ---- [selftest] -----------------------------------------------------------------------
#define LOOM_CONFIG_SELFTEST(X_BOOL, X_INT, X_REAL, X_STR, X_ENUM, X_LIST)                       \
  X_INT(steps, 200, ConfigRange::at_least(1), "number of self-test steps")                        \
  X_INT(max_bytes, 1 << 22, ConfigRange::between(8, 1 << 30), "largest message in bytes")         \
  X_INT(step_sleep_ms, 0, ConfigRange::at_least(0), "sleep after each step, milliseconds")        \
  X_INT(stall_rank, -1, ConfigRange::at_least(-1),                                                \
        "test switch: this rank sleeps stall_seconds before a collective at stall_step; -1 = off") \
  X_INT(stall_step, -1, ConfigRange::at_least(-1), "step at which stall_rank stalls; -1 = off")   \
  X_REAL(stall_seconds, 3600.0, ConfigRange::at_least(0), "how long stall_rank sleeps, seconds")

// ---- [checkpoint] ---------------------------------------------------------------------
#define LOOM_CONFIG_CHECKPOINT(X_BOOL, X_INT, X_REAL, X_STR, X_ENUM, X_LIST)                     \
  X_STR(dir, "checkpoints", "checkpoint directory; a relative path is inside the run directory")  \
  X_INT(every_steps, 0, ConfigRange::at_least(0), "write a checkpoint every N steps; 0 = off")    \
  X_REAL(every_minutes, 30.0, ConfigRange::at_least(0),                                           \
         "write a checkpoint when this many minutes passed since the last; 0 = off")             \
  X_BOOL(at_end, true, "write a checkpoint when training ends")                                   \
  X_INT(keep_last, 3, ConfigRange::at_least(1), "keep the newest N checkpoints")                  \
  X_INT(keep_every_steps, 0, ConfigRange::at_least(0),                                            \
        "also keep every checkpoint whose step is a multiple of N; 0 = none")                    \
  X_ENUM(write_mode, "auto", "auto|gathered|parallel",                                            \
         "auto: MPI-IO from every rank on a parallel file system (Lustre, GPFS, BeeGFS), else rank 0 writes") \
  X_ENUM(on_error, "stop", "stop|continue",                                                       \
         "a failed checkpoint write (disk full, permissions) stops training, or warns and goes on") \
  X_STR(resume, "", "resume from: '' = start fresh, 'auto' = the newest valid checkpoint, or a path")

// ---- [train] --------------------------------------------------------------------------
#define LOOM_CONFIG_TRAIN(X_BOOL, X_INT, X_REAL, X_STR, X_ENUM, X_LIST)                          \
  X_ENUM(model, "glove", "",                                                                      \
         "the model kind `loom train` trains: one of the registered kinds (launch/kinds/)")        \
  X_ENUM(precision, "fp32", "fp32|tf32|bf16",                                                     \
         "matmul precision with run.device = cuda: fp32 exact, tf32 or bf16 tensor cores with "   \
         "fp32 sums; master weights, optimizer state and every other operation stay fp32 "        \
         "(the CPU trains in fp32 only)")

// ---- [corpus] -------------------------------------------------------------------------
// Maps onto CorpusOptions (io/corpus_shard.h); launch/pipeline_data.h.
#define LOOM_CONFIG_CORPUS(X_BOOL, X_INT, X_REAL, X_STR, X_ENUM, X_LIST)                         \
  X_LIST(paths, {}, "corpus files, directories and globs (plain, .gz, .xz), read in sorted order") \
  X_BOOL(synthetic, false,                                                                        \
         "with paths empty: generate the planted-relation corpus (and its analogy questions) "    \
         "into the run directory and train on it")                                                \
  X_INT(synthetic_sentences, 20000, ConfigRange::between(1, 100000000),                           \
        "sentences of the synthetic corpus (one per line; drawn from run.seed)")                  \
  X_BOOL(lowercase, false, "lower-case tokens (Unicode simple case folding)")                    \
  X_INT(max_token_bytes, 0, ConfigRange::at_least(0),                                             \
        "truncate longer tokens (counted and reported); 0 = no limit, but a token longer than "   \
        "the 4 MiB read buffer is then an error naming file:byte")                                 \
  X_INT(max_line_bytes, 1048576, ConfigRange::at_least(64),                                       \
        "lines longer than this are split at whitespace (shard alignment)")                      \
  X_ENUM(utf8, "error", "error|replace",                                                          \
         "invalid UTF-8: error (names file:byte) or replace by U+FFFD and count")

// ---- [vocab] --------------------------------------------------------------------------
#define LOOM_CONFIG_VOCAB(X_BOOL, X_INT, X_REAL, X_STR, X_ENUM, X_LIST)                          \
  X_INT(min_count, 5, ConfigRange::at_least(1), "drop tokens seen fewer times")                   \
  X_INT(max_vocab, 0, ConfigRange::at_least(0), "keep at most this many most frequent; 0 = all")

// ---- [vectors] ------------------------------------------------------------------------
// (Named [vectors], not [export]: `export` is a C++ keyword and the section name is the
// struct member's name.)
#define LOOM_CONFIG_VECTORS(X_BOOL, X_INT, X_REAL, X_STR, X_ENUM, X_LIST)                         \
  X_LIST(formats, (std::vector<std::string>{"glove"}),                                            \
         "vector files written after training (rank 0): glove -> NAME.txt, word2vec -> "          \
         "NAME.w2v.txt, word2vec-bin -> NAME.bin; [] = none")                                     \
  X_STR(name, "vectors", "base name of the vector files in the run directory")

// ---- [eval] ---------------------------------------------------------------------------
#define LOOM_CONFIG_EVAL(X_BOOL, X_INT, X_REAL, X_STR, X_ENUM, X_LIST)                           \
  X_STR(analogy, "",                                                                              \
        "analogy questions (questions-words format) evaluated after training; '' = none, or "     \
        "the planted questions with corpus.synthetic")                                            \
  X_STR(similarity, "", "word pairs with human scores (WordSim-353 format); '' = none")          \
  X_INT(restrict, 30000, ConfigRange::at_least(0),                                                \
        "analogy candidates: the N most frequent words; 0 = all")                                 \
  X_INT(every_epochs, 0, ConfigRange::at_least(0),                                                \
        "also evaluate the analogies every N epochs during training (rank 0); 0 = at the end only") \
  X_INT(examples, 4, ConfigRange::between(0, 100),                                                \
        "example analogies a : b :: c : ? answered at the end (first question of each section)")

// Every section, in output order: X(member, StructName, TABLE, help).
#define LOOM_CONFIG_SECTIONS(X)                                                                  \
  X(run, RunSection, LOOM_CONFIG_RUN, "the run: name, directory, seed, threads, logging")        \
  X(comm, CommSection, LOOM_CONFIG_COMM, "collectives and their watchdog")                       \
  X(status, StatusSection, LOOM_CONFIG_STATUS, "the HTTP status server")                         \
  X(progress, ProgressSection, LOOM_CONFIG_PROGRESS, "progress lines, bar and metrics")          \
  X(checkpoint, CheckpointSection, LOOM_CONFIG_CHECKPOINT, "checkpoints: cadence, retention, resume") \
  X(selftest, SelftestSection, LOOM_CONFIG_SELFTEST, "the collective self-test")                \
  X(train, TrainSection, LOOM_CONFIG_TRAIN, "what `loom train` trains")                         \
  X(corpus, CorpusSection, LOOM_CONFIG_CORPUS, "the training corpus (io/corpus_shard)")          \
  X(vocab, VocabSection, LOOM_CONFIG_VOCAB, "the vocabulary (io/vocab)")                         \
  X(vectors, VectorsSection, LOOM_CONFIG_VECTORS, "vector files exported after training")     \
  X(eval, EvalSection, LOOM_CONFIG_EVAL, "evaluation after (and during) training")

// ---- generators -----------------------------------------------------------------------
// Struct fields: `struct S { LOOM_CONFIG_FIELDS(TABLE) };`
#define LOOM_CONFIG_FIELD_BOOL(key, def, help) bool key = def;
#define LOOM_CONFIG_FIELD_INT(key, def, range, help) std::int64_t key = def;
#define LOOM_CONFIG_FIELD_REAL(key, def, range, help) double key = def;
#define LOOM_CONFIG_FIELD_STR(key, def, help) std::string key = def;
#define LOOM_CONFIG_FIELD_ENUM(key, def, allowed, help) std::string key = def;
#define LOOM_CONFIG_FIELD_LIST(key, def, help) std::vector<std::string> key = def;
#define LOOM_CONFIG_FIELDS(TABLE)                                                               \
  TABLE(LOOM_CONFIG_FIELD_BOOL, LOOM_CONFIG_FIELD_INT, LOOM_CONFIG_FIELD_REAL,                   \
        LOOM_CONFIG_FIELD_STR, LOOM_CONFIG_FIELD_ENUM, LOOM_CONFIG_FIELD_LIST)

// A struct per section plus `Config` holding one of each, all compared member-wise.
#define LOOM_CONFIG_DEFINE_SECTION(member, Type, TABLE, help) \
  struct Type {                                               \
    LOOM_CONFIG_FIELDS(TABLE)                                 \
    bool operator==(const Type&) const = default;             \
  };
#define LOOM_CONFIG_DECLARE_MEMBER(member, Type, TABLE, help) Type member;

// ---- schema records -------------------------------------------------------------------
enum class ConfigKind { kBool, kInt, kReal, kString, kEnum, kStringList };

// Where a key's value lives inside one section object.
using ConfigFieldRef =
    std::variant<bool*, std::int64_t*, double*, std::string*, std::vector<std::string>*>;

struct ConfigKeyInfo {
  const char* key;
  ConfigKind kind;
  ConfigRange range;     // numbers only
  const char* allowed;   // enums only: "a|b|c"; "" otherwise
  const char* help;
  ConfigFieldRef (*field)(void* section);  // the member inside a section object
};

struct ConfigSectionInfo {
  const char* name;
  const char* help;
  void* (*section)(void* root);  // the section object inside a root object (e.g. Config)
  std::vector<ConfigKeyInfo> keys;
};

// Row macros building ConfigKeyInfo records; `SectionT` is the section's struct type.
#define LOOM_CONFIG_FIELD_FN(key) \
  [](void* s) -> ::loom::ConfigFieldRef { return &static_cast<SectionT*>(s)->key; }
#define LOOM_CONFIG_KEY_BOOL(key, def, help) \
  ::loom::ConfigKeyInfo{#key, ::loom::ConfigKind::kBool, {}, "", help, LOOM_CONFIG_FIELD_FN(key)},
#define LOOM_CONFIG_KEY_INT(key, def, range, help) \
  ::loom::ConfigKeyInfo{#key, ::loom::ConfigKind::kInt, range, "", help, LOOM_CONFIG_FIELD_FN(key)},
#define LOOM_CONFIG_KEY_REAL(key, def, range, help) \
  ::loom::ConfigKeyInfo{#key, ::loom::ConfigKind::kReal, range, "", help, LOOM_CONFIG_FIELD_FN(key)},
#define LOOM_CONFIG_KEY_STR(key, def, help) \
  ::loom::ConfigKeyInfo{#key, ::loom::ConfigKind::kString, {}, "", help, LOOM_CONFIG_FIELD_FN(key)},
#define LOOM_CONFIG_KEY_ENUM(key, def, allowed, help) \
  ::loom::ConfigKeyInfo{#key, ::loom::ConfigKind::kEnum, {}, allowed, help, LOOM_CONFIG_FIELD_FN(key)},
#define LOOM_CONFIG_KEY_LIST(key, def, help)                                               \
  ::loom::ConfigKeyInfo{#key, ::loom::ConfigKind::kStringList, {}, "", help,               \
                        LOOM_CONFIG_FIELD_FN(key)},

// An expression of type ConfigSectionInfo for `Root::member`, whose rows are TABLE.
#define LOOM_CONFIG_SECTION_INFO(Root, member, TABLE, help_text)                           \
  [] {                                                                                     \
    using SectionT = decltype(Root::member);                                               \
    return ::loom::ConfigSectionInfo{                                                      \
        #member, help_text,                                                                \
        [](void* root) -> void* { return &static_cast<Root*>(root)->member; },             \
        {TABLE(LOOM_CONFIG_KEY_BOOL, LOOM_CONFIG_KEY_INT, LOOM_CONFIG_KEY_REAL,            \
               LOOM_CONFIG_KEY_STR, LOOM_CONFIG_KEY_ENUM, LOOM_CONFIG_KEY_LIST)}};         \
  }()

}  // namespace loom
