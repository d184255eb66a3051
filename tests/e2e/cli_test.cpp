// Issue 21 ("loom as a user meets it"), the parts about the command line, the examples and
// `loom slurm`, each tried on the real binary as a user would type it: `loom trian`,
// `loom help train`, `loom -v`, the wiki17m examples copied without ../shared, a config
// naming files beside it run from another directory, `cat corpus | loom vocab --set
// corpus.paths=-` (alone and under mpirun), `loom slurm` with a job name sbatch would split
// or a warning past the time limit, the generated script run with a binary that is not
// there, every examples/slurm script naming a config that exists, and processes that look
// started by torchrun.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "tests/support/test_support.h"

namespace loom::test {
namespace {

using namespace std::chrono_literals;
namespace fs = std::filesystem;

const std::string kSource = LOOM_SOURCE_DIR;

RunResult loom(const std::vector<std::string>& args, const std::vector<std::string>& env = {}) {
  std::vector<std::string> cmd = {loom_binary()};
  cmd.insert(cmd.end(), args.begin(), args.end());
  return run(cmd, 120s, env);
}

// `line` run by sh (for pipes, redirections and a working directory).
RunResult sh(const std::string& line, const std::vector<std::string>& env = {}) {
  return run({"/bin/sh", "-c", line}, 180s, env);
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// A directory with no mpirun in it, for PATH.
std::string dir_without_mpirun() {
  static const TempDir dir;
  return dir.path();
}

#define EXPECT_HAS(text, part) EXPECT_TRUE(contains(text, part)) << "expected '" << (part) << "' in:\n" << (text)

// ---- Install ---------------------------------------------------------------------------

// `cmake --install build --prefix P`: P/bin/loom runs from PATH, with the examples and the
// README beside it; the installed synthetic example loads from any directory.
TEST(Install, PutsLoomOnPathWithExamplesAndDocs) {
  TempDir dir;
  const std::string prefix = dir.file("prefix");
  RunResult in = run({LOOM_CMAKE, "--install", LOOM_BUILD_DIR, "--prefix", prefix}, 120s);
  ASSERT_EQ(in.status, 0) << in.out << in.err;
  EXPECT_TRUE(fs::exists(prefix + "/bin/loom"));
  EXPECT_TRUE(fs::exists(prefix + "/share/loom/examples/glove.toml"));
  EXPECT_TRUE(fs::exists(prefix + "/share/loom/examples/slurm"));
  EXPECT_TRUE(fs::exists(prefix + "/share/doc/loom/README.md"));
  RunResult v = sh("cd / && export PATH=" + quoted(prefix + "/bin") + ":\"$PATH\" && loom --version && "
                   "loom config " + quoted(prefix + "/share/loom/examples/glove.toml"));
  ASSERT_EQ(v.status, 0) << v.out << v.err;
  EXPECT_EQ(v.out.rfind("loom ", 0), 0u) << v.out;
  EXPECT_HAS(v.out, "synthetic = true");
}

// ---- A CLI that helps -------------------------------------------------------------------

TEST(Cli, MistypedSubcommandGetsTheNearestOne) {
  RunResult r = loom({"trian", "examples/glove.toml"});
  EXPECT_EQ(r.status, 2);
  EXPECT_HAS(r.err, "unknown subcommand 'trian'; did you mean 'train'?");
  EXPECT_HAS(r.err, "Subcommands of loom: ");
  RunResult far = loom({"banana"});
  EXPECT_EQ(far.status, 2);
  EXPECT_HAS(far.err, "unknown subcommand 'banana'");
  EXPECT_FALSE(contains(far.err, "did you mean")) << far.err;
}

TEST(Cli, HelpVersionAndNothing) {
  RunResult help = loom({"help"});
  EXPECT_EQ(help.status, 0) << help.err;
  EXPECT_HAS(help.out, "Subcommands:");
  EXPECT_HAS(help.out, "train");
  RunResult train = loom({"help", "train"});
  EXPECT_EQ(train.status, 0) << train.err;
  EXPECT_EQ(train.out, loom({"train", "--help"}).out);
  EXPECT_HAS(train.out, "DESCRIPTION");
  RunResult nested = loom({"help", "tokenizer", "train"});
  EXPECT_EQ(nested.status, 0) << nested.err;
  EXPECT_HAS(nested.out, "--vocab-size");
  RunResult bad = loom({"help", "trian"});
  EXPECT_EQ(bad.status, 2);
  EXPECT_HAS(bad.err, "did you mean 'train'?");

  const std::string version = loom({"--version"}).out;
  EXPECT_TRUE(std::regex_search(version, std::regex("^loom \\d+\\.\\d+\\.\\d+\ncommit "))) << version;
  for (const char* spelling : {"version", "-v"}) {
    RunResult v = loom({spelling});
    EXPECT_EQ(v.status, 0) << spelling;
    EXPECT_EQ(v.out, version) << spelling;
  }

  RunResult nothing = loom({});
  EXPECT_EQ(nothing.status, 2);
  EXPECT_TRUE(nothing.out.empty()) << nothing.out;
  EXPECT_HAS(nothing.err, "Subcommands:");
  EXPECT_HAS(nothing.err, "a subcommand is required");
}

// The help says what this loom has: every model kind `loom train --help` lists is named in
// `loom --help`'s headline, with the GPU path as it stands (compiled, never run on a GPU);
// the export line names the models whose checkpoints `loom export` writes for transformers;
// `loom train --help` states the default of vectors.formats as `loom config --describe` has it.
TEST(Cli, HelpSaysWhatExists) {
  const std::string top = loom({"--help"}).out;
  const std::string headline = top.substr(0, top.find("Usage:"));
  const std::string train = loom({"help", "train"}).out;
  const std::smatch kinds = [&] {
    std::smatch m;
    EXPECT_TRUE(std::regex_search(train, m, std::regex("Trains train.model, one of:\n((    \\S+ +[^\n]*\n)+)"))) << train;
    return m;
  }();
  int named = 0;
  std::istringstream lines(kinds.size() > 1 ? kinds[1].str() : "");
  for (std::string line; std::getline(lines, line);) {
    const std::string kind = line.substr(4, line.find(' ', 4) - 4);
    const std::string shown = kind == "glove" ? "GloVe" : kind == "gpt" ? "GPT" : kind == "bert" ? "BERT" : kind;
    EXPECT_HAS(headline, shown);
    ++named;
  }
  EXPECT_GE(named, 4) << train;
  EXPECT_HAS(headline, "GPU path");
  EXPECT_HAS(headline, "has not yet run on a GPU");
  EXPECT_FALSE(contains(headline, "not built")) << headline;
  std::smatch exp;
  ASSERT_TRUE(std::regex_search(top, exp, std::regex("\n  export +([^\n]*)"))) << top;
  EXPECT_HAS(exp[1].str(), "GPT-2");
  EXPECT_HAS(exp[1].str(), "BERT");

  std::smatch def;
  const std::string describe = loom({"config", "--describe"}).out;
  ASSERT_TRUE(std::regex_search(describe, def, std::regex("\nvectors\\.formats +list<string> +(\\[[^\\]]*\\])"))) << describe;
  EXPECT_HAS(train, "(default " + def[1].str());
}

// `loom mpirun` (launch/cli/cli_mpirun.cpp) is listed, has its manual, and refuses before any
// rank starts what it cannot run: no `--`, nothing after it, a subcommand loom lacks (with
// the nearest one), itself; without mpirun on PATH it exits 127 naming PATH. The signals
// are tried in tests/fault/launcher_test.cpp.
TEST(Cli, MpirunLauncherHelpAndRefusals) {
  const std::string top = loom({"--help"}).out;
  EXPECT_TRUE(std::regex_search(top, std::regex("\n  mpirun +run loom under mpirun"))) << top;
  const RunResult help = loom({"help", "mpirun"});
  EXPECT_EQ(help.status, 0) << help.err;
  EXPECT_EQ(help.out, loom({"mpirun", "--help"}).out);
  EXPECT_EQ(help.out, loom({"mpirun", "-np", "2", "--help", "--", "train"}).out);
  EXPECT_HAS(help.out, "loom mpirun [MPIRUN OPTIONS] -- SUBCOMMAND ARGS...");
  EXPECT_HAS(help.out, "exits 128 + its signal (130 SIGINT, 143\n  SIGTERM");
  EXPECT_HAS(help.out, "127    mpirun is not on PATH");
  struct Refused {
    std::vector<std::string> args;
    std::string says;
  };
  for (const Refused& r : {Refused{{"mpirun", "-np", "2", "train"}, "loom mpirun: no `--`"},
                           Refused{{"mpirun", "-np", "2", "--"}, "loom mpirun: no subcommand after `--`"},
                           Refused{{"mpirun", "-np", "2", "--", "trian"}, "unknown subcommand 'trian'; did you mean 'train'?"},
                           Refused{{"mpirun", "-np", "2", "--", "mpirun"}, "`mpirun` cannot run under loom mpirun"}}) {
    const RunResult got = loom(r.args);
    EXPECT_EQ(got.status, 2) << r.says << "\n" << got.err;
    EXPECT_HAS(got.err, r.says);
    EXPECT_FALSE(contains(got.out + got.err, "mpirun detected")) << "mpirun was started:\n" << got.err;
  }
  const RunResult none = loom({"mpirun", "-np", "2", "--", "env"}, {"PATH=" + dir_without_mpirun()});
  EXPECT_EQ(none.status, 127) << none.err;
  EXPECT_HAS(none.err, "loom mpirun: mpirun is not on PATH (PATH=" + dir_without_mpirun() + ")");
}

// Every `loom slurm` example of `loom slurm --help` runs as printed (less its `| sbatch` or
// `> file`) from the repository root and draws no warning: the manual's own commands fit
// the example configs they name.
TEST(Cli, SlurmHelpExamplesRunWithoutWarnings) {
  const std::string help = loom({"help", "slurm"}).out;
  const std::string examples = help.substr(help.find("EXAMPLES"));
  std::vector<std::string> commands;
  std::istringstream in(examples);
  std::string pending;
  for (std::string line; std::getline(in, line);) {
    const size_t start = line.find_first_not_of(' ');
    if (start == std::string::npos) continue;
    std::string text = line.substr(start);
    if (!pending.empty() || text.rfind("loom slurm ", 0) == 0) {
      const bool more = !text.empty() && text.back() == '\\';
      pending += more ? text.substr(0, text.size() - 1) : text;
      if (!more) {
        commands.push_back(pending);
        pending.clear();
      }
    }
  }
  ASSERT_GE(commands.size(), 3u) << help;
  for (std::string command : commands) {
    SCOPED_TRACE(command);
    command = command.substr(0, command.find_first_of("|>"));
    RunResult r = sh("cd " + quoted(kSource) + " && " + quoted(loom_binary()) + command.substr(4));
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_HAS(r.out, "#SBATCH --time=");
    EXPECT_FALSE(contains(r.err, "warning")) << r.err;
  }
}

// ---- Examples that run from a clone alone ---------------------------------------------

// The examples copied into a directory with no ../shared beside it, as a user who cloned
// only the repository has them.
struct Clone {
  TempDir dir;
  std::string examples = dir.file("loom/examples");
  Clone() {
    fs::create_directories(examples);
    for (const auto& e : fs::directory_iterator(kSource + "/examples"))
      if (e.path().extension() == ".toml") fs::copy_file(e.path(), examples + "/" + e.path().filename().string());
  }
};

// Every input missing is named in one message, with what relative paths resolved against,
// before a run directory (or token shards) exists.
TEST(Examples, WithoutSharedDataAllMissingInputsAtOnceAndNothingCreated) {
  Clone clone;
  ASSERT_FALSE(fs::exists(clone.dir.file("shared")));
  struct Case {
    const char* example;
    std::vector<std::string> keys;
  };
  for (const Case& c : {Case{"glove-wiki17m.toml", {"corpus.paths", "eval.analogy", "eval.similarity"}},
                        Case{"word2vec-wiki17m.toml", {"corpus.paths", "eval.analogy", "eval.similarity"}},
                        Case{"gpt.toml", {"corpus.paths"}}}) {
    SCOPED_TRACE(c.example);
    const std::string run_dir = clone.dir.file(std::string("run-") + c.example);
    RunResult r = loom({"train", clone.examples + "/" + c.example, "--set", "run.dir=" + run_dir});
    EXPECT_EQ(r.status, 1) << r.err;
    EXPECT_HAS(r.err, std::to_string(c.keys.size()) + (c.keys.size() == 1 ? " input" : " inputs") +
                          " of the config missing; nothing was started or created:");
    // One line per input, each with the rank prefix (core/log.cpp): "[r0/1][data]   KEY: PATH".
    for (const std::string& key : c.keys) EXPECT_HAS(r.err, "]   " + key + ": " + clone.dir.path() + "/shared/data/");
    EXPECT_HAS(r.err, "are resolved against its directory (" + clone.examples + ")");
    EXPECT_HAS(r.err, "section Data");
    EXPECT_FALSE(fs::exists(run_dir)) << run_dir << " was created";
  }
}

// An example that needs ../shared/data says so at the top and points at the README's Data.
TEST(Examples, SharedDataIsAnnouncedAtTheTop) {
  int announced = 0;
  for (const auto& e : fs::directory_iterator(kSource + "/examples")) {
    if (e.path().extension() != ".toml") continue;
    const std::string text = read_file(e.path().string());
    if (!contains(text, "shared/data/")) continue;
    const std::string top = text.substr(0, text.find("\n\n"));   // the opening comment block
    EXPECT_HAS(top, "needs ../shared/data");
    EXPECT_HAS(top, "README, Data");
    ++announced;
  }
  EXPECT_GE(announced, 4);
}

// Note [Paths in a config]: relative to the config file's directory when written there,
// relative to the current directory when given with --set; one word is a one-element list.
TEST(Examples, RelativePathsResolveAgainstTheConfigsDirectory) {
  TempDir dir;
  fs::create_directories(dir.file("project/data"));
  fs::create_directories(dir.file("elsewhere"));
  RunResult g = loom({"generate-corpus", dir.file("project/data/corpus.txt"), "--sentences", "300"});
  ASSERT_EQ(g.status, 0) << g.err;
  write_file(dir.file("project/run.toml"),
             "[run]\nname = \"rel\"\nthreads = 1\n[corpus]\npaths = [\"data/corpus.txt\"]\n"
             "[eval]\nanalogy = \"data/corpus-questions.txt\"\n[vocab]\nmin_count = 1\n");
  // From another directory: the config's paths still find their files.
  RunResult v = sh("cd " + quoted(dir.file("elsewhere")) + " && " + quoted(loom_binary()) +
                   " vocab ../project/run.toml --set run.dir=runs/v");
  ASSERT_EQ(v.status, 0) << v.out << v.err;
  EXPECT_TRUE(fs::exists(dir.file("elsewhere/runs/v/vocab.txt")));   // run.dir: the current directory's
  const std::string resolved = read_file(dir.file("elsewhere/runs/v/config.toml"));
  EXPECT_HAS(resolved, "paths = [\"" + dir.path() + "/project/data/corpus.txt\"]");
  EXPECT_HAS(resolved, "analogy = \"" + dir.path() + "/project/data/corpus-questions.txt\"");

  // --set: the current directory's, and one string is the list of that file.
  RunResult c = sh("cd " + quoted(dir.file("project/data")) + " && " + quoted(loom_binary()) +
                   " config ../run.toml --set corpus.paths=corpus.txt --set eval.similarity=pairs.tsv");
  ASSERT_EQ(c.status, 0) << c.err;
  EXPECT_HAS(c.out, "paths = [\"" + dir.path() + "/project/data/corpus.txt\"]");
  EXPECT_HAS(c.out, "similarity = \"" + dir.path() + "/project/data/pairs.tsv\"");
  RunResult list = loom({"config", "--set", "corpus.paths=[a.txt"});
  EXPECT_EQ(list.status, 2);
  EXPECT_HAS(list.err, "write one file as --set corpus.paths=a.txt, several as --set 'corpus.paths=[\"a.txt\", \"b.txt\"]'");
}

// A synthetic example pointed at a file without turning its corpus.synthetic off: refused
// as a config error (2) that says which key to set, before the run directory exists.
TEST(Examples, SyntheticAndPathsTogetherRefusedBeforeAnything) {
  TempDir dir;
  write_file(dir.file("mine.txt"), "a b c\n");
  const std::string run_dir = dir.file("run");
  RunResult r = loom({"train", kSource + "/examples/glove.toml", "--set", "corpus.paths=" + dir.file("mine.txt"),
                      "--set", "run.dir=" + run_dir});
  EXPECT_EQ(r.status, 2) << r.err;
  EXPECT_HAS(r.err, "corpus.synthetic = true and corpus.paths are both set: choose one (--set "
                    "corpus.synthetic=false trains on corpus.paths)");
  EXPECT_FALSE(fs::exists(run_dir)) << run_dir << " was created";
}

// Note [Corpus from standard input]: `-` reads the corpus from a pipe, alone and under
// mpirun (rank 0 spools it into the run directory); the vocabulary equals the one of the file.
TEST(Examples, CorpusFromStandardInput) {
  TempDir dir;
  const std::string corpus = dir.file("corpus.txt");
  ASSERT_EQ(loom({"generate-corpus", corpus, "--sentences", "400"}).status, 0);
  const std::string common = " --set run.threads=1 --set vocab.min_count=1";
  RunResult file = loom({"vocab", "--set", "corpus.paths=" + corpus, "--set", "run.dir=" + dir.file("file"),
                         "--set", "run.threads=1", "--set", "vocab.min_count=1"});
  ASSERT_EQ(file.status, 0) << file.err;
  RunResult one = sh(quoted(loom_binary()) + " vocab --set corpus.paths=- --set run.dir=" + quoted(dir.file("one")) +
                     common + " < " + quoted(corpus));
  ASSERT_EQ(one.status, 0) << one.err;
  EXPECT_HAS(one.err, "bytes of standard input (corpus.paths '-') into " + dir.file("one") + "/stdin.txt");
  EXPECT_EQ(read_file(dir.file("one/vocab.txt")), read_file(dir.file("file/vocab.txt")));
  std::string mpirun;
  for (const std::string& a : mpirun_prefix(2)) mpirun += a + " ";
  RunResult two = sh(mpirun + quoted(loom_binary()) + " vocab --set corpus.paths=- --set run.dir=" +
                     quoted(dir.file("two")) + common + " < " + quoted(corpus));
  ASSERT_EQ(two.status, 0) << two.out << two.err;
  EXPECT_EQ(read_file(dir.file("two/vocab.txt")), read_file(dir.file("file/vocab.txt")));
  // Through `loom mpirun`, which runs mpirun in a process group of its own: the pipe is
  // passed on (only a terminal is not).
  std::string launcher = quoted(loom_binary()) + " mpirun";
  for (size_t i = 1; i < mpirun_prefix(2).size(); ++i) launcher += " " + mpirun_prefix(2)[i];
  RunResult three = sh(launcher + " -- vocab --set corpus.paths=- --set run.dir=" + quoted(dir.file("three")) + common +
                       " < " + quoted(corpus));
  ASSERT_EQ(three.status, 0) << three.out << three.err;
  EXPECT_EQ(read_file(dir.file("three/vocab.txt")), read_file(dir.file("file/vocab.txt")));
  // A terminal on standard input (script(1) gives the command one) is refused, not waited on.
  if (sh("command -v script").status != 0) LOOM_SKIP_OR_FAIL("script(1) not installed (apt-get install bsdutils)");
  RunResult tty = sh("script -qec " + quoted(quoted(loom_binary()) + " vocab --set corpus.paths=- --set run.dir=" +
                                             quoted(dir.file("tty"))) + " /dev/null < /dev/null");
  EXPECT_HAS(tty.out + tty.err, "'-' is standard input, which is a terminal here: pipe the corpus in");
  EXPECT_FALSE(fs::exists(dir.file("tty"))) << "a run directory was created";
}

// ---- Evaluating vectors on files they barely cover ------------------------------------

// Note [Similarity coverage] and the analogy sections with no answered question, through
// the binary: vectors of 6 words against 40 pairs (2 usable) and two analogy sections, one
// of which names only words the vectors lack.
TEST(Eval, LowCoverageAndUnansweredSectionsAreSaid) {
  TempDir dir;
  write_file(dir.file("vectors.txt"),
             "king 1 0 0.1\nqueen 1 1 0.1\nman 0.2 0 1\nwoman 0.2 1 1\nparis 0 0.3 0.3\nfrance 0.5 0.2 0\n");
  std::string pairs = "# word1 word2 score\nking queen 8.5\nman woman 8.3\n";
  for (int i = 0; i < 38; ++i) pairs += "tiger" + std::to_string(i) + "\tcat" + std::to_string(i) + "\t7.0\n";
  write_file(dir.file("pairs.tsv"), pairs);
  RunResult sim = loom({"eval", "similarity", dir.file("vectors.txt"), dir.file("pairs.tsv")});
  EXPECT_EQ(sim.status, 0) << sim.err;
  EXPECT_HAS(sim.out + sim.err, "over 2 of 40 pairs (38 skipped");
  EXPECT_HAS(sim.out + sim.err, "coverage too low to mean anything: 2 of 40 pairs");

  write_file(dir.file("questions.txt"),
             ": family\nking queen man woman\nman woman king queen\n"
             ": currency\nangola kwanza japan yen\nchina yuan russia ruble\n");
  RunResult an = loom({"eval", "analogy", dir.file("vectors.txt"), dir.file("questions.txt")});
  EXPECT_EQ(an.status, 0) << an.err;
  EXPECT_TRUE(std::regex_search(an.out, std::regex("(^|\n)family +[0-9.]+ %  \\([0-9] / 2 answered"))) << an.out;
  EXPECT_TRUE(std::regex_search(an.out, std::regex("(^|\n)currency +--    \\(no question answered of 2"))) << an.out;
  EXPECT_FALSE(std::regex_search(an.out, std::regex("(^|\n)currency +0\\.00 %"))) << an.out;
  // The manuals say so too.
  EXPECT_HAS(loom({"help", "eval", "similarity"}).out, "coverage too low");
  EXPECT_HAS(loom({"help", "eval", "analogy"}).out, "shows `--`");
}

// ---- loom slurm ------------------------------------------------------------------------

const std::string kGlove = kSource + "/examples/glove.toml";

TEST(Slurm, ScriptNamesThisBinaryAndChecksIt) {
  TempDir dir;
  RunResult r = loom({"slurm", kGlove, "--set", "glove.epochs=3", "--set", "run.dir=runs/mine-{job}"});
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_HAS(r.out, "LOOM=${LOOM:-'" + fs::canonical(loom_binary()).string() + "'}");
  EXPECT_HAS(r.out, "--resume auto --set 'glove.epochs=3' --set \"run.dir=$RUN_DIR\"");
  EXPECT_HAS(r.out, "RUN_DIR=${LOOM_RUN_DIR:-'runs/mine-{job}'}");
  // The generated script, run where the binary is not: 127 and a message, before srun.
  const std::string script = dir.file("job.sbatch");
  write_file(script, r.out);
  for (const std::string& missing : {std::string("/nonexistent/loom"), std::string("no-such-loom-binary")}) {
    RunResult job = sh("cd " + quoted(dir.path()) + " && bash job.sbatch", {"LOOM=" + missing, "SLURM_JOB_ID=7"});
    EXPECT_EQ(job.status, 127) << job.out << job.err;
    EXPECT_HAS(job.err, "[job 7] error: the loom binary '" + missing + "' does not exist or is not executable");
    EXPECT_FALSE(contains(job.out, "start ")) << "the script went on to srun:\n" << job.out;
  }
  RunResult other = loom({"slurm", kGlove, "--loom", "build/loom"});
  EXPECT_HAS(other.out, "LOOM=${LOOM:-'build/loom'}");
}

TEST(Slurm, RefusesWhatWouldBreakTheJob) {
  RunResult name = loom({"slurm", kGlove, "--job-name", "my run"});
  EXPECT_EQ(name.status, 2);
  EXPECT_HAS(name.err, "--job-name 'my run' holds characters");
  EXPECT_HAS(name.err, "e.g. --job-name my-run");
  EXPECT_TRUE(name.out.empty());
  RunResult fine = loom({"slurm", kGlove, "--job-name", "my-run.2"});
  EXPECT_EQ(fine.status, 0) << fine.err;
  EXPECT_HAS(fine.out, "#SBATCH --job-name=my-run.2\n");
  // A run.name with a space makes a plain default job name.
  RunResult spaced = loom({"slurm", kGlove, "--set", "run.name=my glove"});
  EXPECT_EQ(spaced.status, 0) << spaced.err;
  EXPECT_HAS(spaced.out, "#SBATCH --job-name=loom-my-glove\n");

  for (const auto& [time, warning] : std::vector<std::pair<std::string, std::string>>{
           {"5", "300"}, {"00:05:00", "301"}, {"0-00:02", "120"}}) {
    RunResult r = loom({"slurm", kGlove, "--time", time, "--warning", warning});
    EXPECT_EQ(r.status, 2) << time << " " << warning;
    EXPECT_HAS(r.err, "--warning " + warning + " s is at or beyond --time " + time);
  }
  EXPECT_EQ(loom({"slurm", kGlove, "--time", "5", "--warning", "299"}).status, 0);
  // Accepted, with a warning: SLURM may send the warning up to 60 s early.
  RunResult tight = loom({"slurm", kGlove, "--time", "00:01:00", "--warning", "27"});
  EXPECT_EQ(tight.status, 0) << tight.err;
  EXPECT_HAS(tight.err, "--time 00:01:00 leaves 33 s before the --warning 27 s");
  EXPECT_HAS(tight.err, "after as little as 0 s of work");
  EXPECT_FALSE(contains(loom({"slurm", kGlove, "--time", "00:10:00", "--warning", "120"}).err, "up to 60 s early"));
  EXPECT_EQ(loom({"slurm", kGlove, "--time", "1-00:00:00", "--warning", "600"}).status, 0);
  RunResult bad_time = loom({"slurm", kGlove, "--time", "1h"});
  EXPECT_EQ(bad_time.status, 2);
  EXPECT_HAS(bad_time.err, "--time '1h' is not a SLURM time limit");
  RunResult bad_set = loom({"slurm", kGlove, "--set", "glove.epoch=3"});
  EXPECT_EQ(bad_set.status, 2);
  EXPECT_HAS(bad_set.err, "did you mean 'glove.epochs'?");
}

TEST(Slurm, WarnsWhenResourcesDoNotFitTheConfig) {
  RunResult gpu = loom({"slurm", kGlove, "--gpus-per-node", "2"});
  EXPECT_EQ(gpu.status, 0) << gpu.err;
  EXPECT_HAS(gpu.err, "--gpus-per-node 2 asks for GPUs, but train.model = glove trains on the CPU");
  RunResult cpus = loom({"slurm", kGlove, "--cpus-per-task", "4", "--set", "glove.threads=0", "--set", "run.threads=1"});
  EXPECT_EQ(cpus.status, 0) << cpus.err;
  EXPECT_HAS(cpus.err, "--cpus-per-task 4 but the config pins run.threads = 1 threads per rank: cores would sit idle");
  RunResult kind = loom({"slurm", kGlove, "--cpus-per-task", "2", "--set", "glove.threads=4"});
  EXPECT_HAS(kind.err, "pins glove.threads = 4 threads per rank: threads would share cores");
  RunResult unset = loom({"slurm", kGlove});   // glove.toml pins glove.threads = 1: fine on SLURM's one core
  EXPECT_FALSE(contains(unset.err, "warn")) << unset.err;
  RunResult many = loom({"slurm", kGlove, "--set", "glove.threads=3"});
  EXPECT_HAS(many.err, "pins glove.threads = 3 threads per rank, but without --cpus-per-task");
  RunResult fits = loom({"slurm", kGlove, "--cpus-per-task", "4", "--set", "run.threads=4", "--set", "glove.threads=0"});
  EXPECT_EQ(fits.status, 0);
  EXPECT_FALSE(contains(fits.err, "warn")) << fits.err;
}

// Every job script in examples/slurm names, in its CONFIG line (what srun's `loom train`
// reads), a config that exists in the repository (the scripts run from its root), trains
// the model the script is named for (`loom config` loads it), and is what its first comment
// line says it trains.
TEST(Slurm, ExampleScriptsNameConfigsThatExist) {
  const std::regex config_line("\nCONFIG=\\$\\{LOOM_CONFIG:-'([^']*)'\\}\n");
  std::vector<std::string> scripts;
  for (const fs::directory_entry& e : fs::directory_iterator(kSource + "/examples/slurm"))
    if (e.path().extension() == ".sbatch") scripts.push_back(e.path().filename().string());
  std::sort(scripts.begin(), scripts.end());
  EXPECT_GE(scripts.size(), size_t(6));
  for (const char* must : {"bert-cpu.sbatch", "bert-gpu.sbatch", "gpt-cpu.sbatch", "glove-cpu.sbatch"})
    EXPECT_NE(std::find(scripts.begin(), scripts.end(), must), scripts.end()) << "examples/slurm/" << must;
  for (const std::string& name : scripts) {
    SCOPED_TRACE("examples/slurm/" + name);
    const std::string text = read_file(kSource + "/examples/slurm/" + name);
    std::smatch m;
    ASSERT_TRUE(std::regex_search(text, m, config_line)) << "no CONFIG=${LOOM_CONFIG:-'PATH'} line";
    const std::string config = m[1];
    EXPECT_FALSE(std::regex_search(m.suffix().first, text.cend(), config_line)) << "two CONFIG lines";
    EXPECT_HAS(text, "\"$LOOM\" train \"$CONFIG\"");
    EXPECT_HAS(text, "# loom: train " + config + " as");
    const std::string path = kSource + "/" + config;
    ASSERT_TRUE(fs::is_regular_file(path)) << "CONFIG names " << config << ", which is not in the repository";
    // `loom config` loads it (every key checked) and prints it resolved.
    RunResult resolved = loom({"config", path});
    ASSERT_EQ(resolved.status, 0) << config << ":\n" << resolved.err;
    EXPECT_HAS(resolved.out, "[train]\nmodel = \"" + name.substr(0, name.find('-')) + "\"\n");
  }
}

// ---- torchrun --------------------------------------------------------------------------

TEST(Launch, TorchrunEnvironmentIsNamed) {
  RunResult r = loom({"env"}, {"RANK=0", "WORLD_SIZE=2", "LOCAL_RANK=0", "MASTER_ADDR=127.0.0.1"});
  EXPECT_EQ(r.status, 1) << r.out << r.err;
  EXPECT_HAS(r.err, "started by torchrun or a PyTorch launcher (RANK=0 WORLD_SIZE=2 LOCAL_RANK=0 MASTER_ADDR=127.0.0.1");
  EXPECT_HAS(r.err, "Launch with `mpirun -np 2 loom ...`");
  // The second process says nothing: one message per launch.
  RunResult second = loom({"env"}, {"RANK=1", "WORLD_SIZE=2"});
  EXPECT_EQ(second.status, 1);
  EXPECT_FALSE(contains(second.err, "torchrun")) << second.err;
}

}  // namespace
}  // namespace loom::test
