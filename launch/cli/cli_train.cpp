// Subcommands that train or prepare data on ranks: train (every registered model kind,
// launch/pipeline/model_registry.h), vocab, cooccur; and generate-corpus. The commands on
// vector files (export, eval, neighbors, analogy) are in cli_vectors.cpp.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "launch/cli/cli.h"
#include "launch/cli/cli_vectors.h"
#include "launch/kinds/glove.h"
#include "launch/pipeline/model_registry.h"
#include "launch/pipeline/pipeline.h"
#include "launch/run/signals.h"
#include "io/planted_corpus.h"

namespace loom {
namespace {

// Bound to the options; lives as long as the program (CLI11 writes into it during parse).
struct EmbeddingArgs {
  std::string config;
  std::vector<std::string> set;
  std::string resume;
  std::string export_bin;
  std::string corpus_out, questions_out;
  int64_t sentences = 20000;
  int64_t seed = 1234;
};

const char* const kRunDirFiles =
    "FILES (in the run directory, run.dir)\n"
    "  config.toml                     the resolved config\n"
    "  planted.txt, planted-questions.txt   the generated corpus (corpus.synthetic = true)\n"
    "  vocab.txt, vocab.h5             the vocabulary (GloVe's `word count` lines; HDF5)\n"
    "  cooccur.part-R-of-W.h5          rank R's co-occurrence partition at world size W\n"
    "  vocab.fingerprint, cooccur.fingerprint   what the files were computed from; a later\n"
    "                                  run reuses them while corpus files (size, mtime) and\n"
    "                                  settings are unchanged\n";

// "  glove      GloVe: ...\n" for every registered kind.
std::string model_kind_lines() {
  std::string out;
  for (const ModelKind& k : model_kinds()) {
    std::string name = k.name;
    name.resize(std::max<size_t>(name.size() + 2, 12), ' ');
    out += "    " + name + k.help + "\n";
  }
  return out;
}

void register_train(CLI::App& app, CommandAction& chosen, EmbeddingArgs& a) {
  CLI::App* cmd = add_command(
      app, "train", "train a model: data stages -> training -> export -> evaluation",
      "  Trains train.model, one of:\n" + model_kind_lines() +
      "  on corpus.paths, or on the planted-relation corpus that loom generates with\n"
      "  corpus.synthetic = true. Each rank reads its shard of the corpus; the model kind's\n"
      "  data stages (the vocabulary, for GloVe the co-occurrence matrix, for GPT and BERT\n"
      "  the token shards) are built\n"
      "  collectively and kept in the run directory, where later runs reuse them while the\n"
      "  corpus files and the settings they depend on are unchanged (a changed world size\n"
      "  recomputes the co-occurrence partitions). The model then trains with the Trainer:\n"
      "  progress, metrics.jsonl, checkpoints, stop signals (checkpoint, exit 128+N) and\n"
      "  --resume. GPT and BERT train on the CPU, or on GPUs with run.device = \"cuda\" (a path\n"
      "  that is built but has not yet run on a GPU). Afterwards rank 0 writes the exports\n"
      "  (word vectors: the formats vectors.formats lists; GPT and BERT: RUN_DIR/hf) and, when\n"
      "  eval.analogy / eval.similarity name files (or with the planted corpus), prints the\n"
      "  per-section analogy accuracy, semantic / syntactic / total, example answers and\n"
      "  Spearman's rho, and writes them to eval.json. glove.threads / word2vec.threads > 1\n"
      "  run Hogwild threads (results depend on timing); 1 makes a run, and a resumed run,\n"
      "  bit-exact. word2vec skips the co-occurrence stage: each rank reads its shard as word\n"
      "  ids, replicas synchronised every word2vec.step_words words.\n",
      "  loom train examples/glove.toml                       # planted corpus, one process\n"
      "  mpirun -np 2 loom train examples/glove.toml\n"
      "  mpirun -np 2 loom train examples/glove-wiki17m.toml --set glove.epochs=5\n"
      "  mpirun -np 2 loom train examples/word2vec.toml         # word2vec, planted corpus\n"
      "  loom train examples/word2vec-wiki17m.toml --set word2vec.arch=cbow\n"
      "  loom train examples/glove.toml --set corpus.paths=my.txt --set corpus.synthetic=false\n"
      "  xzcat corpus.xz | loom train examples/glove.toml --set corpus.paths=- --set corpus.synthetic=false\n"
      "  loom train examples/gpt.toml                          # GPT, Shakespeare (../shared/data)\n"
      "  mpirun -np 2 loom train RUN.toml --resume auto        # after a kill or a stop\n",
      std::string(kRunDirFiles) +
          "  checkpoints/step_NNNNNNNN.h5, checkpoints/latest   HDF5 checkpoints (loom inspect)\n"
          "  vectors.txt, vectors.w2v.txt, vectors.bin   GloVe text, word2vec text, word2vec binary:\n"
          "                                  those vectors.formats lists (default [\"glove\"]:\n"
          "                                  vectors.txt only)\n"
          "  tokens/, tokenizer/, hf/        GPT and BERT: token shards, the tokenizer's files,\n"
          "                                  the Hugging Face export (model.safetensors)\n"
          "  eval.json                       evaluation, per-epoch loss, phase times, exports\n"
          "  metrics.jsonl                   one JSON object per step\n");
  add_config_options(cmd, a.config, a.set);
  cmd->add_option("--resume", a.resume, "resume: 'auto' (newest valid checkpoint, else start fresh) or a checkpoint path")
      ->type_name("auto|PATH");
  cmd->callback([&chosen, &a] {
    chosen = [&a] {
      std::vector<std::string> set = a.set;
      if (!a.resume.empty()) set.push_back("checkpoint.resume=" + a.resume);
      return with_session({a.config, set, true, "train"}, [](Session& s) {
        install_stop_handlers();
        return run_train_pipeline(s);
      });
    };
  });
}

void register_vocab(CLI::App& app, CommandAction& chosen, EmbeddingArgs& a) {
  CLI::App* cmd = add_command(
      app, "vocab", "count the corpus and write the vocabulary (vocab.txt, vocab.h5)",
      "  Every rank counts its shard of corpus.paths (or of the planted corpus with\n"
      "  corpus.synthetic); counts are merged across ranks, vocab.min_count and\n"
      "  vocab.max_vocab applied, and the words ordered by count, then bytes, so the result\n"
      "  is the same for any world size. Reuses an up-to-date vocabulary in the run\n"
      "  directory; `loom train` reuses what this writes.\n",
      "  loom vocab examples/glove-wiki17m.toml\n"
      "  mpirun -np 2 loom vocab RUN.toml --set vocab.min_count=10\n",
      kRunDirFiles);
  add_config_options(cmd, a.config, a.set);
  cmd->callback([&chosen, &a] {
    chosen = [&a] { return with_session({a.config, a.set, true, "vocab"}, run_vocab_command); };
  });
}

void register_cooccur(CLI::App& app, CommandAction& chosen, EmbeddingArgs& a) {
  CLI::App* cmd = add_command(
      app, "cooccur", "build the co-occurrence matrix (after the vocabulary), one partition per rank",
      "  Builds (or reuses) the vocabulary, then counts GloVe's co-occurrences: within a line,\n"
      "  kept tokens at distance d <= cooccur.window add 1/d (both directions unless\n"
      "  cooccur.symmetric = false). Counting spills sorted runs to disk over\n"
      "  cooccur.memory_gb; entries are exchanged so that rank r owns the rows with\n"
      "  row % W == r, summed exactly and shuffled from (run.seed, r). With --export-bin the\n"
      "  whole matrix is also written as GloVe's cooccurrence.bin (int32 word1, int32 word2,\n"
      "  float64 value, 1-based ids), which GloVe's own `glove` tool can train on.\n",
      "  loom cooccur examples/glove-wiki17m.toml\n"
      "  mpirun -np 2 loom cooccur RUN.toml --export-bin /tmp/cooccurrence.bin\n",
      kRunDirFiles);
  add_config_options(cmd, a.config, a.set);
  cmd->add_option("--export-bin", a.export_bin, "also write GloVe's cooccurrence.bin here")->type_name("PATH");
  cmd->callback([&chosen, &a] {
    chosen = [&a] {
      return with_session({a.config, a.set, true, "cooccur"},
                          [&a](Session& s) { return run_cooccur_command(s, a.export_bin); });
    };
  });
}

void register_generate_corpus(CLI::App& app, CommandAction& chosen, EmbeddingArgs& a) {
  CLI::App* cmd = add_command(
      app, "generate-corpus", "write the synthetic corpus with planted analogies and its questions",
      "  Writes SENTENCES lines of the planted-relation corpus: four relations (country :\n"
      "  capital, male : female, singular : plural, positive : comparative), 12 word pairs\n"
      "  each, every line one target word among context pseudo-words drawn from a log-linear\n"
      "  model in which b_i - a_i + a_j ~ b_j. The questions file lists every such analogy in\n"
      "  the questions-words format. `loom train` with corpus.synthetic = true generates the\n"
      "  same corpus itself (seed = run.seed).\n",
      "  loom generate-corpus /tmp/planted.txt --questions /tmp/planted-questions.txt\n"
      "  loom generate-corpus big.txt --sentences 1000000 --seed 7\n");
  cmd->add_option("corpus", a.corpus_out, "corpus file to write")->required();
  cmd->add_option("--questions", a.questions_out, "questions file (default: CORPUS with -questions.txt)");
  cmd->add_option("--sentences", a.sentences, "lines to write")->check(CLI::Range(int64_t{1}, int64_t{100000000}));
  cmd->add_option("--seed", a.seed, "random seed")->check(CLI::NonNegativeNumber);
  cmd->callback([&chosen, &a] {
    chosen = [&a] {
      return run_local_command("generate-corpus", [&a] {
        std::string q = a.questions_out;
        if (q.empty()) {
          q = a.corpus_out;
          if (q.size() > 4 && q.ends_with(".txt")) q.resize(q.size() - 4);
          q += "-questions.txt";
        }
        PlantedCorpusInfo info = generate_planted_corpus(a.corpus_out, q, static_cast<uint64_t>(a.seed), a.sentences);
        std::printf("wrote %s (%lld sentences, %lld tokens) and %s (%lld questions)\n", a.corpus_out.c_str(),
                    static_cast<long long>(info.sentences), static_cast<long long>(info.tokens), q.c_str(),
                    static_cast<long long>(info.questions));
        return 0;
      });
    };
  });
}

}  // namespace

void register_embedding_commands(CLI::App& app, CommandAction& chosen) {
  static EmbeddingArgs args;
  register_train(app, chosen, args);
  register_vocab(app, chosen, args);
  register_cooccur(app, chosen, args);
  register_generate_corpus(app, chosen, args);
  register_vector_commands(app, chosen);
}

}  // namespace loom
