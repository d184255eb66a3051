// Embedding-model subcommands. (Filled in as GloVe and word2vec land.)
#include <CLI/CLI.hpp>

#include "launch/cli.h"

namespace loom {

void register_embedding_commands(CLI::App&, CommandAction&) {}

}  // namespace loom
