// The `loom` command: a table of subcommands. Each one parses its arguments with CLI11,
// runs, and returns an exit status; loom::Error is caught here, printed with the rank
// prefix, and ends every rank of the job (STYLE.md rule 6).
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/log.h"
#include "core/version.h"
#include "dist/mpi_communicator.h"
#include "io/checkpoint.h"
#include "launch/cli/cli.h"
#include "launch/config/config.h"
#include "launch/config/config_engine.h"
#include "launch/cli/selftest.h"
#include "launch/run/session.h"

namespace {

using loom::Error;
using loom::add_config_options;
using loom::with_session;

std::string version_text() {
  return std::string("loom ") + loom::kVersion + "\ncommit " + loom::kGitCommit + "\nbuild " +
         loom::kBuildType + "\nCUDA " + (loom::kWithCuda ? "on" : "off") + "\n";
}

std::vector<std::string> subcommand_names(CLI::App& app) {
  std::vector<std::string> names;
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) names.push_back(sub->get_name());
  return names;
}

// "loom: unknown subcommand 'trian'; did you mean 'train'?", then the subcommands, for
// `what` typed where a subcommand of `app` (named `path`: "loom", "loom tokenizer") belongs.
std::string unknown_subcommand(CLI::App& app, const std::string& path, const std::string& what) {
  const std::vector<std::string> names = subcommand_names(app);
  const std::string best = loom::closest_name(what, names);
  std::string list;
  for (const std::string& n : names) list += (list.empty() ? "" : ", ") + n;
  return path + ": unknown subcommand '" + what + "'" + (best.empty() ? "" : "; did you mean '" + best + "'?") +
         "\nSubcommands of " + path + ": " + list + "\nRun `" + path + " --help` for what each does.\n";
}

// Note [A CLI that helps]
// What CLI11 alone answered "A subcommand is required" to is settled before it parses:
//  - `loom` alone prints the usage to stderr and exits 2 (kExitUsage: nothing was asked
//    for, as with a bad command line; a script that calls `loom` without a subcommand is
//    wrong and must not pass);
//  - `loom help [SUBCOMMAND...]` is `loom [SUBCOMMAND...] --help` (stdout, exit 0);
//  - `loom version` is `loom --version` (and so is `-v`, the version flag's short name);
//  - a first word that is no subcommand (and no option) is refused with the nearest
//    subcommand, found as config keys find theirs (closest_name), and the list of them.
// Returns the arguments to parse, or sets *exit_now to the status to exit with.
std::vector<std::string> settle_command_words(CLI::App& app, std::vector<std::string> args, int* exit_now) {
  *exit_now = -1;
  if (args.size() == 1) {
    std::fputs(app.help().c_str(), stderr);
    std::fputs("\nloom: a subcommand is required (see above; `loom help SUBCOMMAND` for its manual)\n", stderr);
    *exit_now = loom::kExitUsage;
    return args;
  }
  if (args[1] == "version") return {args[0], "--version"};
  if (args[1] == "help") {
    std::vector<std::string> out = {args[0]};
    CLI::App* at = &app;
    std::string path = "loom";
    for (size_t i = 2; i < args.size() && !args[i].starts_with('-'); ++i) {   // `loom help --help`: the usage
      CLI::App* sub = nullptr;
      try {
        sub = at->get_subcommand(args[i]);
      } catch (const CLI::OptionNotFound&) {
      }
      if (sub == nullptr || args[i] == "help" || args[i] == "version") {
        if (sub != nullptr) break;   // `loom help help`: the top-level usage
        std::fputs(unknown_subcommand(*at, path, args[i]).c_str(), stderr);
        *exit_now = loom::kExitUsage;
        return args;
      }
      out.push_back(args[i]);
      path += " " + args[i];
      at = sub;
    }
    out.push_back("--help");
    return out;
  }
  if (!args[1].empty() && args[1][0] != '-') {
    bool known = false;
    for (const std::string& n : subcommand_names(app)) known = known || n == args[1];
    if (!known) {
      std::fputs(unknown_subcommand(app, "loom", args[1]).c_str(), stderr);
      *exit_now = loom::kExitUsage;
    }
  }
  return args;
}

// `loom mpirun [MPIRUN OPTIONS] -- SUBCOMMAND ARGS...`: the words before `--` are mpirun's,
// which CLI11 cannot parse, so they are settled here. -h or --help among them (or nothing
// at all) is the manual; a missing `--` or a SUBCOMMAND that loom lacks is refused before
// any rank starts. Returns the arguments to parse (the manual), or sets *exit_now.
std::vector<std::string> settle_mpirun(CLI::App& app, const std::vector<std::string>& args, int* exit_now) {
  const auto dashes = std::find(args.begin() + 2, args.end(), "--");
  const bool help = args.size() == 2 || std::any_of(args.begin() + 2, dashes, [](const std::string& a) {
    return a == "-h" || a == "--help";
  });
  if (help) return {args[0], "mpirun", "--help"};
  const std::string usage = "Usage: loom mpirun [MPIRUN OPTIONS] -- SUBCOMMAND ARGS...  "
                            "(loom mpirun -np 2 -- train examples/glove.toml)\n";
  if (dashes == args.end() || dashes + 1 == args.end()) {
    std::fputs(("loom mpirun: " + std::string(dashes == args.end() ? "no `--`" : "no subcommand after `--`") +
                ": write mpirun's options, then `--`, then the loom subcommand and its arguments\n" + usage)
                   .c_str(),
               stderr);
    *exit_now = loom::kExitUsage;
    return args;
  }
  const std::string& sub = *(dashes + 1);
  const std::vector<std::string> names = subcommand_names(app);
  const bool known = sub.starts_with('-') || std::find(names.begin(), names.end(), sub) != names.end();
  if (!known || sub == "mpirun") {
    std::fputs((known ? "loom mpirun: `mpirun` cannot run under loom mpirun\n" + usage
                      : unknown_subcommand(app, "loom", sub)).c_str(), stderr);
    *exit_now = loom::kExitUsage;
    return args;
  }
  *exit_now = loom::run_mpirun_launcher({args.begin() + 2, dashes}, {dashes + 1, args.end()});
  return args;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{
      "loom - pretrain text models data-parallel across processes\n\n"
      "loom trains word embeddings (GloVe, word2vec) and transformers (BERT, GPT) on CPUs,\n"
      "on one laptop or across a cluster. GPT and BERT also have a GPU path (run.device =\n"
      "\"cuda\", NCCL; compiled when the build finds CUDA) that has not yet run on a GPU: its\n"
      "tests skip without one and it is unmeasured. One binary runs alone, under\n"
      "`loom mpirun -np N -- ...` (mpirun, with the exit status of a stop signal that a\n"
      "scheduler needs), or as the tasks of a SLURM `srun` step; every run is one TOML\n"
      "config plus --set overrides, and writes its outputs to a run directory.\n",
      "loom"};
  app.require_subcommand(1);
  app.set_version_flag("-v,--version", version_text(), "print version, git commit, build type, CUDA on/off");
  app.footer(std::string("Run `loom help SUBCOMMAND` (or `loom SUBCOMMAND --help`) for the manual of each "
                         "subcommand.\n\n") + loom::kExitStatusText);
  // Listed for `loom --help`; settle_command_words answers both before CLI11 parses.
  app.add_subcommand("help", "print this usage, or with SUBCOMMAND its manual: loom help train");
  app.add_subcommand("version", "print version, git commit, build type, CUDA on/off (also -v, --version)");

  // ---- selftest ---------------------------------------------------------------------
  std::string selftest_config;
  std::vector<std::string> selftest_set;
  CLI::App* selftest = loom::add_command(
      app, "selftest", "run every collective on checked data across all ranks",
      "  Each step runs allreduce (sum, avg, max, min; blocking and async), broadcast from a\n"
      "  rotating root, allgatherv with uneven counts, alltoallv and barrier, on integer data\n"
      "  whose result is known exactly, and checks every element. Message sizes cycle from 0\n"
      "  bytes to selftest.max_bytes. Progress, metrics.jsonl, the status server, stop signals\n"
      "  and the watchdog behave as in training.\n",
      "  mpirun -np 2 loom selftest examples/selftest.toml\n"
      "  loom selftest --set selftest.steps=50 --set status.port=0\n"
      "  srun --mpi=pmix -n 4 loom selftest --set comm.timeout_s=60\n",
      "FILES\n"
      "  RUN_DIR/config.toml   the resolved config\n"
      "  RUN_DIR/metrics.jsonl one JSON object per step\n");
  add_config_options(selftest, selftest_config, selftest_set);

  // ---- env --------------------------------------------------------------------------
  CLI::App* env = loom::add_command(
      app, "env", "print the run environment: launcher, ranks and hosts, threads, GPUs, versions",
      "  Detects how the job was launched (singleton, mpirun, SLURM srun), brings up the\n"
      "  world communicator, and prints from rank 0 one line per rank (host, local rank, pid,\n"
      "  threads, GPU) and the versions of MPI, HDF5, NCCL and CUDA. Run it under the same\n"
      "  launcher as the job to check a cluster allocation.\n",
      "  loom env\n  mpirun -np 4 loom env\n  srun --mpi=pmix -n 2 loom env\n");

  // ---- config -----------------------------------------------------------------------
  std::string config_path;
  std::vector<std::string> config_set;
  bool describe = false;
  CLI::App* config = loom::add_command(
      app, "config", "check a config and print it resolved, or describe every key",
      "  With --describe, prints the schema: every section.key with its type, default, allowed\n"
      "  range and meaning. Otherwise loads CONFIG (and --set overrides), reports the first\n"
      "  error with its key and file:line, and prints the full resolved config as TOML.\n",
      "  loom config --describe\n  loom config examples/selftest.toml --set run.seed=7\n");
  add_config_options(config, config_path, config_set);
  config->add_flag("--describe", describe, "print every key: type, default, range, help");

  // ---- inspect ----------------------------------------------------------------------
  std::string inspect_path;
  CLI::App* inspect = loom::add_command(
      app, "inspect", "show a checkpoint: metadata, config, datasets, checksums",
      "  Opens CKPT (an .h5 checkpoint, or a checkpoint directory: its `latest`), verifies\n"
      "  the format, the version and every dataset's checksum, and prints the metadata\n"
      "  (model kind, step, epoch, tokens seen, world size, loom version, creation time), the\n"
      "  stored config and every dataset with its shape, size and checksum status. Needs no\n"
      "  MPI launcher. Exit status 1 when the checkpoint is damaged or unreadable.\n",
      "  loom inspect runs/glove/checkpoints/step_00001200.h5\n  loom inspect runs/glove/checkpoints\n");
  inspect->add_option("checkpoint", inspect_path, "checkpoint file or directory")->required();

  loom::CommandAction chosen;
  loom::register_embedding_commands(app, chosen);
  loom::register_slurm_command(app, chosen);
  loom::register_tokenize_commands(app, chosen);
  loom::register_gpt_commands(app, chosen);
  loom::register_mpirun_command(app);

  int exit_now = -1;
  std::vector<std::string> args =
      settle_command_words(app, std::vector<std::string>(argv, argv + argc), &exit_now);
  if (exit_now >= 0) return exit_now;
  if (args.size() >= 2 && args[1] == "mpirun") {
    args = settle_mpirun(app, args, &exit_now);
    if (exit_now >= 0) return exit_now;
  }
  try {
    // CLI11 parses a vector in reverse order (it pops from the back).
    std::vector<std::string> reversed(args.rbegin(), args.rend() - 1);
    app.parse(reversed);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : loom::kExitUsage;
  }

  if (chosen) return chosen();
  if (*selftest) {
    return with_session({selftest_config, selftest_set, true, "selftest"},
                        [](loom::Session& s) { return loom::run_selftest(s); });
  }
  if (*env) {
    return with_session({"", {}, false, "env"}, [](loom::Session& s) {
      std::string text = loom::describe_environment(s.comm(), s.env());
      std::fputs(text.c_str(), stdout);
      return 0;
    });
  }
  if (*inspect) {
    std::string path = inspect_path;
    if (std::filesystem::is_directory(path)) {
      std::ifstream latest(path + "/latest");
      std::string name;
      std::getline(latest, name);
      if (name.empty()) {
        loom::log::error("inspect", path + " has no `latest` checkpoint");
        return loom::kExitError;
      }
      path = (std::filesystem::path(path) / name).string();
    }
    bool ok = false;
    std::fputs(loom::inspect_checkpoint(path, &ok).c_str(), stdout);
    return ok ? 0 : loom::kExitError;
  }
  if (*config) {
    try {
      if (describe) {
        std::fputs(loom::describe_config_schema().c_str(), stdout);
      } else {
        std::fputs(loom::config_to_toml(loom::load_config_for_cli(config_path, config_set)).c_str(), stdout);
      }
      return 0;
    } catch (const Error& e) {
      loom::log::error("config", e.what());
      return e.exit_code();
    }
  }
  return loom::kExitUsage;
}
