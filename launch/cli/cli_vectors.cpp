// `loom export`, `loom eval analogy|similarity`, `loom neighbors`, `loom analogy`
// (cli_vectors.h). Results go to stdout, messages to stderr.
#include "launch/cli/cli_vectors.h"

#include <CLI/CLI.hpp>

#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "core/param_store.h"
#include "io/checkpoint.h"
#include "io/export.h"
#include "launch/cli/cli.h"
#include "launch/config/config.h"
#include "launch/pipeline/model_registry.h"
#include "launch/pipeline/pipeline_eval.h"
#include "models/embedding_eval.h"
#include "models/glove/glove.h"

namespace loom {
namespace {

struct VectorArgs {
  std::string vectors, questions, pairs, word, a, b, c, json;
  std::string checkpoint, format, out, output;   // format "": the kind's own
  int64_t restrict_vocab = 30000;
  int64_t windows = 0;
  std::vector<std::string> set;
  int k = 10;
  bool no_fold = false;
};

// `loom export`: the checkpoint's model kind writes it (ModelKind::export_checkpoint).
int export_checkpoint(const VectorArgs& a) {
  ExportRequest request{checkpoint_file(a.checkpoint), a.format, a.out, a.output};
  CheckpointReader reader;
  reader.open(request.path);
  const std::string& kind = reader.meta().model_kind;
  if (request.format.empty()) request.format = kind == "gpt" || kind == "bert" ? "safetensors" : "glove";
  for (const ModelKind& k : model_kinds())
    if (kind == k.name) {
      k.export_checkpoint(reader, request);
      return 0;
    }
  throw DataError(request.path + " holds a " + kind + " model, which this loom cannot export (it knows: " +
                  model_kind_names() + ")");
}

int eval_analogy(const VectorArgs& a) {
  EmbeddingTable table = read_vectors(a.vectors);
  AnalogyOptions o;
  o.restrict_vocab = a.restrict_vocab;
  o.case_fold = !a.no_fold;
  AnalogyResult r = evaluate_analogy(table, a.questions, o);
  std::printf("%s", format_analogy(r).c_str());
  if (!a.json.empty()) {
    std::ofstream out(a.json, std::ios::trunc);
    out << analogy_json(r) << "\n";
    LOOM_CHECK(static_cast<bool>(out), IoError, "cannot write " + a.json);
  }
  return 0;
}

int eval_similarity(const VectorArgs& a) {
  EmbeddingTable table = read_vectors(a.vectors);
  SimilarityResult r = evaluate_similarity(table, a.pairs, !a.no_fold);
  std::printf("%s", format_similarity(r).c_str());
  if (!a.json.empty()) {
    std::ofstream out(a.json, std::ios::trunc);
    out << similarity_json(r) << "\n";
    LOOM_CHECK(static_cast<bool>(out), IoError, "cannot write " + a.json);
  }
  return 0;
}

int neighbors(const VectorArgs& a) {
  EmbeddingTable table = read_vectors(a.vectors);
  for (const Neighbor& n : nearest_neighbors(table, a.word, a.k, !a.no_fold))
    std::printf("%-24s %.4f\n", n.word.c_str(), static_cast<double>(n.cosine));
  return 0;
}

int analogy(const VectorArgs& a) {
  EmbeddingTable table = read_vectors(a.vectors);
  std::printf("%s : %s :: %s : ?\n", a.a.c_str(), a.b.c_str(), a.c.c_str());
  for (const Neighbor& n : analogy_topk(table, a.a, a.b, a.c, a.k, a.restrict_vocab, !a.no_fold))
    std::printf("%-24s %.4f\n", n.word.c_str(), static_cast<double>(n.cosine));
  return 0;
}

void on_run(CLI::App* cmd, CommandAction& chosen, const char* name, int (*body)(const VectorArgs&), VectorArgs& a) {
  cmd->callback([&chosen, name, body, &a] {
    chosen = [name, body, &a] { return run_local_command(name, [body, &a] { return body(a); }); };
  });
}

const char* const kVectorFormats =
    "  VECTORS is any of loom's exports - GloVe text, word2vec text or word2vec binary -\n"
    "  detected from the content; rows in file order (loom writes them most frequent first).\n";

void register_export(CLI::App& app, CommandAction& chosen, VectorArgs& a) {
  CLI::App* cmd = add_command(
      app, "export", "write a checkpoint for other tools: word vectors (GloVe, word2vec), Hugging Face GPT-2 or BERT",
      "  Reads CKPT (a checkpoint file, or a checkpoint directory: its `latest`), verifies its\n"
      "  checksums and writes the word vectors to OUT. GloVe: W + W_ctx, W alone or [W, W_ctx]\n"
      "  (--output; default: the checkpoint's glove.output); word2vec: syn0, as its training\n"
      "  run exports (--output does not apply). Formats: glove (`word v1 .. vD`),\n"
      "  word2vec (a `count dim` header, then text lines), word2vec-bin (the header, then\n"
      "  `word ` + D little-endian float32 per word, as gensim reads with binary=True). Values\n"
      "  round-trip bit-exactly. GPT checkpoints: --format safetensors writes the directory\n"
      "  --out with model.safetensors, config.json and the run's tokenizer files, which\n"
      "  transformers loads as GPT2LMHeadModel (and GPT2TokenizerFast for BPE); BERT\n"
      "  checkpoints likewise as BertForPreTraining and BertTokenizerFast (vocab.txt,\n"
      "  tokenizer_config.json). word2vec checkpoints: --format word2vec-full writes the\n"
      "  directory --out with syn0 (vectors.bin), the output weights (syn1neg.npy), the counts\n"
      "  (vocab.txt), gensim's arguments (gensim.json) and to_gensim.py, which builds a gensim\n"
      "  Word2Vec model that continues training (negative sampling only). Needs no MPI launcher.\n",
      "  loom export runs/glove/checkpoints --format word2vec-bin --out vectors.bin\n"
      "  loom export runs/glove/checkpoints/step_00000100.h5 --out vectors.txt --output w\n"
      "  loom export runs/word2vec/checkpoints --format word2vec --out vectors.w2v\n"
      "  loom export runs/word2vec/checkpoints --format word2vec-full --out w2v-full\n"
      "  loom export runs/gpt/checkpoints --format safetensors --out gpt-hf\n"
      "  loom export runs/bert/checkpoints --out bert-hf\n");
  cmd->add_option("checkpoint", a.checkpoint, "checkpoint file or directory")->required();
  cmd->add_option("--format", a.format,
                  "glove | word2vec | word2vec-bin (vectors; default glove) | word2vec-full (word2vec, for "
                  "gensim) | safetensors (GPT, BERT)")
      ->check(CLI::IsMember({"glove", "word2vec", "word2vec-bin", "word2vec-full", "safetensors"}));
  cmd->add_option("--out", a.out, "file to write (safetensors, word2vec-full: a directory)")->required();
  cmd->add_option("--output", a.output, "sum | w | concat (default: the checkpoint's glove.output)")
      ->check(CLI::IsMember({"sum", "w", "concat"}));
  on_run(cmd, chosen, "export", export_checkpoint, a);
}

void register_eval(CLI::App& app, CommandAction& chosen, VectorArgs& a) {
  CLI::App* eval = add_command(
      app, "eval", "evaluate: a language model's held-out loss, or word vectors (analogy, similarity)",
      "  `loom eval CKPT` (a GPT or BERT checkpoint file or directory) on the held-out split\n"
      "  of the checkpoint's run (its stored config says how; --set changes it, e.g. --set\n"
      "  gpt.eval_batches=100): GPT's mean token loss and perplexity with the unigram\n"
      "  baseline; BERT's masked-LM loss and accuracy and next-sentence loss and accuracy.\n"
      "  Runs on the ranks of the launch (mpirun -np N splits the windows or examples).\n"
      "  Word vectors: `loom eval analogy VECTORS QUESTIONS` and `loom eval similarity\n"
      "  VECTORS PAIRS`; see `loom eval analogy --help` and `loom eval similarity --help`.\n",
      "  loom eval runs/gpt/checkpoints\n"
      "  mpirun -np 2 loom eval runs/gpt/checkpoints/step_00001000.h5 --windows 512\n"
      "  loom eval runs/bert/checkpoints --windows 1024\n"
      "  loom eval analogy runs/glove/vectors.txt ../shared/data/questions-words.txt\n"
      "  loom eval similarity runs/glove/vectors.bin ../shared/data/wordsim353.tsv\n");
  eval->require_subcommand(0, 1);
  eval->add_option("checkpoint", a.checkpoint, "a language model checkpoint file or directory");
  eval->add_option("--set", a.set, "override a key of the checkpoint's config, section.key=value");
  eval->add_option("--windows", a.windows, "held-out windows (GPT) or sentence pairs (BERT) to evaluate (default: eval_batches batches)")
      ->check(CLI::NonNegativeNumber);
  eval->callback([&chosen, &a, eval] {
    if (!eval->get_subcommands().empty()) return;
    if (a.checkpoint.empty())
      throw CLI::RequiredError("eval needs a checkpoint, or a subcommand: analogy, similarity");
    chosen = [&a] { return run_lm_eval(a.checkpoint, a.set, a.windows); };
  });
  CLI::App* an = add_command(
      *eval, "analogy", "analogy accuracy (3CosAdd) per section, semantic / syntactic / total",
      std::string("  QUESTIONS is in word2vec's questions-words format: `: section` lines, then\n"
                  "  `a b c d` lines. The answer to a : b :: c : ? is the candidate nearest to\n"
                  "  b - a + c by cosine over unit vectors, a, b and c excluded. Candidates are\n"
                  "  the --restrict most frequent words (the first rows); a question using a word\n"
                  "  outside them is skipped and counted. Words are case-folded. Sections whose\n"
                  "  name starts with `gram` are syntactic, the others semantic. Prints one line\n"
                  "  per section, then semantic, syntactic and total with answered counts; a\n"
                  "  section with no answered question shows `--` and why, not 0.00 %.\n") +
          kVectorFormats,
      "  loom eval analogy vectors.txt questions-words.txt\n"
      "  loom eval analogy vectors.bin questions-words.txt --restrict 0 --json acc.json\n");
  an->add_option("vectors", a.vectors, "vectors file")->required()->check(CLI::ExistingFile);
  an->add_option("questions", a.questions, "questions-words file")->required()->check(CLI::ExistingFile);
  an->add_option("--restrict", a.restrict_vocab, "candidates: the N most frequent words; 0 = all (default 30000)")
      ->check(CLI::NonNegativeNumber);
  an->add_flag("--no-case-fold", a.no_fold, "compare words exactly");
  an->add_option("--json", a.json, "also write the result as JSON here");
  on_run(an, chosen, "eval", eval_analogy, a);
  CLI::App* sim = add_command(
      *eval, "similarity", "Spearman's rho between human scores and cosine similarities",
      std::string("  PAIRS holds `word1 word2 score` lines (tab or space separated; `#` comments and\n"
                  "  a header row are skipped), as WordSim-353. Pairs with a word not in the\n"
                  "  vectors are skipped and counted. Fewer than 30 usable pairs, or under half of\n"
                  "  the file's, are reported as coverage too low for the rho to mean anything.\n") +
          kVectorFormats,
      "  loom eval similarity vectors.txt ../shared/data/wordsim353.tsv\n");
  sim->add_option("vectors", a.vectors, "vectors file")->required()->check(CLI::ExistingFile);
  sim->add_option("pairs", a.pairs, "word pairs with scores")->required()->check(CLI::ExistingFile);
  sim->add_flag("--no-case-fold", a.no_fold, "compare words exactly");
  sim->add_option("--json", a.json, "also write the result as JSON here");
  on_run(sim, chosen, "eval", eval_similarity, a);
}

void register_neighbors(CLI::App& app, CommandAction& chosen, VectorArgs& a) {
  CLI::App* cmd = add_command(app, "neighbors", "the nearest words to WORD by cosine",
                              std::string("  Prints the k words nearest to WORD (itself excluded) by cosine\n"
                                          "  similarity over the whole table, one `word cosine` per line.\n") +
                                  kVectorFormats,
                              "  loom neighbors runs/glove/vectors.txt paris\n"
                              "  loom neighbors vectors.bin king -k 20\n");
  cmd->add_option("vectors", a.vectors, "vectors file")->required()->check(CLI::ExistingFile);
  cmd->add_option("word", a.word, "the word")->required();
  cmd->add_option("-k", a.k, "how many (default 10)")->check(CLI::PositiveNumber);
  cmd->add_flag("--no-case-fold", a.no_fold, "compare words exactly");
  on_run(cmd, chosen, "neighbors", neighbors, a);
}

void register_analogy(CLI::App& app, CommandAction& chosen, VectorArgs& a) {
  CLI::App* cmd = add_command(app, "analogy", "answer a : b :: c : ? (3CosAdd)",
                              std::string("  Prints the k words nearest to b - a + c over unit vectors (a, b and c\n"
                                          "  excluded), among the --restrict most frequent words (0 = all).\n") +
                                  kVectorFormats,
                              "  loom analogy runs/glove/vectors.txt france paris germany\n"
                              "  loom analogy vectors.bin man king woman -k 5 --restrict 30000\n");
  cmd->add_option("vectors", a.vectors, "vectors file")->required()->check(CLI::ExistingFile);
  cmd->add_option("a", a.a, "a")->required();
  cmd->add_option("b", a.b, "b")->required();
  cmd->add_option("c", a.c, "c")->required();
  cmd->add_option("-k", a.k, "how many (default 10)")->check(CLI::PositiveNumber);
  cmd->add_option("--restrict", a.restrict_vocab, "candidates: the N most frequent words; 0 = all (default 30000)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_flag("--no-case-fold", a.no_fold, "compare words exactly");
  on_run(cmd, chosen, "analogy", analogy, a);
}

}  // namespace

std::string checkpoint_file(const std::string& path) {
  if (!std::filesystem::is_directory(path)) return path;
  std::ifstream latest(path + "/latest");
  std::string name;
  std::getline(latest, name);
  LOOM_CHECK(!name.empty(), IoError, path + " has no `latest` checkpoint");
  return (std::filesystem::path(path) / name).string();
}

int run_local_command(const char* command, const std::function<int()>& body) {
  log::set_rank(0, 1);
  try {
    return body();
  } catch (const Error& e) {
    log::error(command, e.what());
    return e.exit_code();
  } catch (const std::exception& e) {
    log::error(command, std::string("internal error: ") + e.what());
    return kExitError;
  }
}

void register_vector_commands(CLI::App& app, CommandAction& chosen) {
  static VectorArgs args;
  register_export(app, chosen, args);
  register_eval(app, chosen, args);
  register_neighbors(app, chosen, args);
  register_analogy(app, chosen, args);
}

}  // namespace loom
