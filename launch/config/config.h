#pragma once
// Config: loom's run configuration. A run is one TOML file plus `--set section.key=value`
// overrides, applied in that order over the defaults. One typed struct per section,
// generated from the schema tables in config_schema.h (key, type, default, range, help);
// see the top of that file for how to add a key or a section.
//
// The resolved config (config_to_toml) is printed at start and stored in every
// checkpoint; load_config_text reads it back to an equal Config. Every failure is a
// loom::ConfigError (exit status 2) naming the key and file:line or the --set argument.
#include <string>
#include <string_view>
#include <vector>

#include "launch/config/config_schema.h"
#include "launch/config/model_sections.h"

namespace loom {

// Generated from config_schema.h (the engine's sections) and from the registered model
// kinds' tables (launch/kinds/, Note [Model sections]).
// struct RunSection, CommSection, StatusSection, ProgressSection, SelftestSection, ...
LOOM_CONFIG_SECTIONS(LOOM_CONFIG_DEFINE_SECTION)

struct Config {
  // RunSection run; CommSection comm; StatusSection status; ProgressSection progress;
  // SelftestSection selftest; ... in LOOM_CONFIG_SECTIONS order.
  LOOM_CONFIG_SECTIONS(LOOM_CONFIG_DECLARE_MEMBER)
  // The sections of the registered model kinds (Note [Model sections]):
  // models.get<GloveSection>() and so on.
  ModelSections models;
  bool operator==(const Config&) const = default;
};

// Note [Paths in a config]
// The keys that name input files - corpus.paths, eval.analogy, eval.similarity,
// tokens.vocab, tokens.merges, checkpoint.resume (config_input_path_keys) - are resolved
// when the config loads: a relative path written in a config FILE is relative to that
// file's directory (as in CMake, Cargo, Docker Compose: `examples/x.toml` can name
// `../data/c.txt` and run from any directory); a relative path given with --set is
// relative to the current directory, as a shell user means it. Both become absolute, so
// the resolved config (RUN_DIR/config.toml, a checkpoint's stored config) names the same
// files wherever it is read from later. Outputs (run.dir, checkpoint.dir, tokens.dir,
// cooccur.spill_dir) are not inputs: run.dir stays relative to the current directory,
// the others to the run directory. Left as written: '' (none), '-' in corpus.paths
// (standard input), 'auto' in checkpoint.resume. A config read from text (a checkpoint's
// stored config) is taken as it is: it was resolved when that run loaded it.

// Reads the TOML file at `path` (empty: defaults only), then applies `overrides`
// ("section.key=value", later ones win), resolving input paths (Note [Paths in a config]).
// Throws ConfigError.
Config load_config(const std::string& path, const std::vector<std::string>& overrides);

// "corpus.paths", "eval.analogy", ...: the keys that name input files.
const std::vector<std::string>& config_input_path_keys();

// Every input file the config names that is not there, one line each ("corpus.paths:
// /abs/c.txt does not exist"), in key order; empty when all are. `needs_corpus`: the
// command reads corpus.paths (train, vocab, cooccur, tokenize), so an empty list without
// corpus.synthetic is reported too. Globs must match a file; '-' is standard input.
std::vector<std::string> missing_config_inputs(const Config& config, bool needs_corpus);

// The same from TOML text; `origin` names it in messages (e.g. "run.toml" or "checkpoint").
Config load_config_text(std::string_view text, const std::string& origin,
                        const std::vector<std::string>& overrides);

// Every key of every section as TOML text; load_config_text reads it back to an equal Config.
std::string config_to_toml(const Config& config);

// The value of "section.key" in `config` as TOML text ("100", "\"cbow\"", "[]");
// ConfigError when the key does not exist.
std::string config_value_text(const Config& config, std::string_view key);

// A table of every key: section.key, type, default, range or allowed values, help.
std::string describe_config_schema();

// "section.key" for every key, in schema order.
std::vector<std::string> config_keys();

// The run directory: `dir` (run.dir) with "{name}" replaced by `name` (run.name) and
// "{job}" by `job_id` (SLURM_JOB_ID; "local" when empty). Any other "{...}" is a
// ConfigError naming 'run.dir'. load_config already rejects unknown placeholders.
std::string expand_run_dir(const std::string& dir, const std::string& name, const std::string& job_id);
inline std::string expand_run_dir(const RunSection& run, const std::string& job_id) {
  return expand_run_dir(run.dir, run.name, job_id);
}

}  // namespace loom
