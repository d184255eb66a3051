#pragma once
// Commands on vector files and checkpoints that need no ranks: export (vectors from a
// checkpoint), eval analogy|similarity, neighbors, analogy (launch/cli/cli_vectors.cpp).
#include <functional>

#include "launch/cli/cli.h"

namespace CLI {
class App;
}

namespace loom {

void register_vector_commands(CLI::App& app, CommandAction& chosen);

// Runs a command that starts no ranks: a loom::Error is printed (naming what and where)
// and its exit status returned.
int run_local_command(const char* command, const std::function<int()>& body);

}  // namespace loom
