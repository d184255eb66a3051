#pragma once
// Commands on vector files and checkpoints that need no ranks: export (vectors from a
// checkpoint), eval analogy|similarity, neighbors, analogy (launch/cli/cli_vectors.cpp).
#include <functional>
#include <string>

#include "launch/cli/cli.h"

namespace CLI {
class App;
}

namespace loom {

void register_vector_commands(CLI::App& app, CommandAction& chosen);

// A checkpoint file, or a checkpoint directory's `latest` (IoError when it has none).
std::string checkpoint_file(const std::string& path);

// Runs a command that starts no ranks: a loom::Error is printed (naming what and where)
// and its exit status returned.
int run_local_command(const char* command, const std::function<int()>& body);

}  // namespace loom
