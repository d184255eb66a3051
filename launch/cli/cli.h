#pragma once
// Pieces shared by the `loom` subcommands. Each group of subcommands lives in its own
// launch/cli_*.cpp and registers itself on the CLI11 app; the subcommand the user picked
// stores its action in `chosen`, and main() runs it after parsing. State bound to options
// must outlive the parse (keep it in a struct owned by the registering function's static).
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "launch/run/session.h"

namespace CLI {
class App;
}

namespace loom {

using CommandAction = std::function<int()>;

// The EXIT STATUS section every manual page ends with.
extern const char* const kExitStatusText;

// Adds subcommand `name` whose --help reads like a manual page: `summary` (one line, also
// shown in `loom --help`), then DESCRIPTION, EXAMPLES, any `extra` sections (FILES ...) and
// EXIT STATUS. Each text is already indented and newline-terminated.
CLI::App* add_command(CLI::App& app, const std::string& name, const std::string& summary,
                      const std::string& description, const std::string& examples,
                      const std::string& extra = "");

// Adds the optional CONFIG positional (an existing file) and repeatable --set KEY=VALUE.
void add_config_options(CLI::App* cmd, std::string& config_path, std::vector<std::string>& overrides);

// Runs `body` inside a Session. A loom::Error (or any exception) ends every rank of the job
// through end_with_error; returns the exit status.
int with_session(const SessionOptions& options, const std::function<int(Session&)>& body);

// Embedding models: train (GloVe, word2vec), vocab, cooccur, export, eval, neighbors,
// analogy (launch/cli/cli_train.cpp).
void register_embedding_commands(CLI::App& app, CommandAction& chosen);

// `loom tokenize` and `loom tokenizer train` (launch/cli/cli_tokenize.cpp).
void register_tokenize_commands(CLI::App& app, CommandAction& chosen);

// `loom slurm`: prints a preemptible, self-requeueing sbatch script for a config
// (launch/cli/cli_slurm.cpp).
void register_slurm_command(CLI::App& app, CommandAction& chosen);

// `loom mpirun [MPIRUN OPTIONS] -- SUBCOMMAND ARGS...` (launch/cli/cli_mpirun.cpp, Note [Why
// loom mpirun]): registered for the help and the subcommand list only; main() hands the words
// to run_mpirun_launcher before CLI11 parses, since mpirun's options are not loom's.
void register_mpirun_command(CLI::App& app);
// Runs mpirun with `mpirun_options`, this binary and `command` (a loom subcommand and its
// arguments); returns the status a scheduler must see.
int run_mpirun_launcher(const std::vector<std::string>& mpirun_options, const std::vector<std::string>& command);

// `loom generate` (launch/cli/cli_gpt.cpp).
void register_gpt_commands(CLI::App& app, CommandAction& chosen);
// `loom eval CKPT` for a language model checkpoint: held-out loss and perplexity, on the
// ranks of the launch (launch/cli/cli_gpt.cpp). windows 0 = gpt.eval_batches batches.
int run_lm_eval(const std::string& checkpoint, const std::vector<std::string>& overrides,
                int64_t windows);

}  // namespace loom
