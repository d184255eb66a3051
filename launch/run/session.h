#pragma once
// Session: what every subcommand that runs on ranks does first and last. It reads the run
// environment, loads the config (all ranks parse the same file; a ConfigError is raised
// before MPI starts, so a bad config never leaves a rank waiting), brings up the world
// communicator, applies the log level and the watchdog deadline, and (when asked) creates
// the run directory and writes the resolved config there.
#include <memory>
#include <string>
#include <vector>

#include "launch/config/config.h"
#include "launch/run/run_env.h"

namespace loom {

class MpiCommunicator;

struct SessionOptions {
  std::string config_path;                 // empty: defaults
  std::vector<std::string> overrides;      // "section.key=value"
  bool create_run_dir = true;              // train-like commands: yes; env, inspect: no
  std::string command;                     // for logs: "selftest", "env", ...
  std::string config_text{};               // when set, the config instead of config_path
                                           // (a checkpoint's stored config)
  std::string config_origin{};             // names config_text in messages
};

class Session {
 public:
  explicit Session(const SessionOptions& options);
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  const Config& config() const { return config_; }
  const RunEnv& env() const { return env_; }
  MpiCommunicator& comm() const { return *comm_; }
  const std::string& run_dir() const { return run_dir_; }   // empty unless created

 private:
  Config config_;
  RunEnv env_;
  MpiCommunicator* comm_ = nullptr;
  std::string run_dir_;
};

// Reports a failure and returns the exit status to use. Once MPI is up with several ranks:
// when every rank ends with an error within a few seconds, rank 0 prints it once and all
// return its status (Note [An error every rank reaches] in dist/mpi_communicator.h);
// otherwise the communicator's abort ends them all (nobody is left waiting in a
// collective; does not return). Before MPI is up every rank sees the same (config) error,
// so only rank 0 of the launch prints it.
int end_with_error(const std::string& command, const std::string& message, int exit_code);

// Loads a config the way Session does, for commands that do not start ranks.
Config load_config_for_cli(const std::string& path, const std::vector<std::string>& overrides);

// The environment report of `loom env` (rank 0 gets the text; others an empty string).
// Collective: every rank must call it.
std::string describe_environment(MpiCommunicator& comm, const RunEnv& env);
// The GPUs rank 0 sees, one line each (name, memory, compute capability, UUID), or a line
// saying "no GPU" and why; part of describe_environment.
std::string describe_gpus();

}  // namespace loom
