#include <CLI/CLI.hpp>

#include <exception>
#include <memory>

#include "core/error.h"
#include "launch/cli/cli.h"

namespace loom {

const char* const kExitStatusText =
    "EXIT STATUS\n"
    "  0    success\n"
    "  1    an error (bad input, I/O, a failed check); the message names what and where\n"
    "  2    bad command line or config (the message names the key and file:line)\n"
    "  3    watchdog: a collective did not finish within comm.timeout_s (names op, step, ranks)\n"
    "  4    another rank failed and this one was stopped\n"
    "  128+N  clean stop on signal N (130 SIGINT, 138 SIGUSR1, 143 SIGTERM)\n";

CLI::App* add_command(CLI::App& app, const std::string& name, const std::string& summary,
                      const std::string& description, const std::string& examples, const std::string& extra) {
  CLI::App* cmd = app.add_subcommand(name, summary);
  std::string footer = "DESCRIPTION\n" + description + "\nEXAMPLES\n" + examples + "\n";
  if (!extra.empty()) footer += extra + "\n";
  cmd->footer(footer + kExitStatusText);
  return cmd;
}

void add_config_options(CLI::App* cmd, std::string& config_path, std::vector<std::string>& overrides) {
  cmd->add_option("config", config_path,
                  "TOML config file (optional: defaults apply); relative paths in it are relative to its directory")
      ->check(CLI::ExistingFile);
  cmd->add_option("--set", overrides,
                  "override one config key: --set section.key=value (repeatable); a relative path is relative "
                  "to the current directory, one word is a one-element list (--set corpus.paths=a.txt)")
      ->type_name("KEY=VALUE")
      ->take_all();
}

int with_session(const SessionOptions& options, const std::function<int(Session&)>& body) {
  std::unique_ptr<Session> session;
  try {
    session = std::make_unique<Session>(options);
    return body(*session);
  } catch (const Error& e) {
    return end_with_error(options.command, e.what(), e.exit_code());
  } catch (const std::exception& e) {
    return end_with_error(options.command, std::string("internal error: ") + e.what(), kExitError);
  }
}

}  // namespace loom
