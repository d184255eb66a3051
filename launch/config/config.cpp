// loom's Config: the schema instance and the public entry points; see config.h.
#include "launch/config/config.h"

#include <glob.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <variant>

#include "core/error.h"
#include "launch/config/config_engine.h"
#include "launch/config/config_format.h"

namespace loom {
namespace {

#define LOOM_CONFIG_SECTION_RECORD(member, Type, TABLE, help) \
  LOOM_CONFIG_SECTION_INFO(Config, member, TABLE, help),

// The engine's sections, then every registered model section (built at first use, after
// the static registrations). train.model accepts the registered kinds' names.
const ConfigSchema& schema() {
  static const ConfigSchema kSchema = [] {
    ConfigSchema sections = {LOOM_CONFIG_SECTIONS(LOOM_CONFIG_SECTION_RECORD)};
    for (const ModelSectionType& t : model_section_types()) sections.push_back(t.info());
    static const std::string kinds = model_kind_names();
    for (ConfigSectionInfo& section : sections)
      for (ConfigKeyInfo& key : section.keys)
        if (std::string_view(section.name) == "train" && std::string_view(key.key) == "model") key.allowed = kinds.c_str();
    return sections;
  }();
  return kSchema;
}

#undef LOOM_CONFIG_SECTION_RECORD

std::string read_config_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    throw ConfigError("cannot read config file '" + path + "': it is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in)
    throw ConfigError("cannot read config file '" + path + "': " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ConfigError("cannot read config file '" + path + "': read failed");
  return text.str();
}

}  // namespace

Config load_config_text(std::string_view text, const std::string& origin,
                        const std::vector<std::string>& overrides) {
  Config config;
  apply_config_text(schema(), &config, text, origin);
  for (const auto& assignment : overrides) apply_config_override(schema(), &config, assignment);
  expand_run_dir(config.run, "");  // rejects unknown placeholders now, not at first use
  return config;
}

const std::vector<std::string>& config_input_path_keys() {
  static const std::vector<std::string> kKeys = {"corpus.paths", "eval.analogy", "eval.similarity",
                                                 "tokens.vocab", "tokens.merges", "checkpoint.resume"};
  return kKeys;
}

namespace {

// The field of "section.key" inside `config` (Note [Paths in a config]: the keys are
// looked up through the schema, so launch/config needs no model kind's header).
ConfigFieldRef field_of(Config& config, std::string_view key) {
  const size_t dot = key.find('.');
  for (const ConfigSectionInfo& section : schema()) {
    if (key.substr(0, dot) != section.name) continue;
    for (const ConfigKeyInfo& info : section.keys)
      if (key.substr(dot + 1) == info.key) return info.field(section.section(&config));
  }
  LOOM_ASSERT(false, "input path key " + std::string(key) + " is not in the schema");
  return {};
}

// Calls fn(key, path) for every input path the config names (one per list element).
template <typename Fn>
void for_each_input_path(Config& config, Fn fn) {
  for (const std::string& key : config_input_path_keys()) {
    ConfigFieldRef field = field_of(config, key);
    if (auto* list = std::get_if<std::vector<std::string>*>(&field)) {
      for (std::string& p : **list) fn(key, p);
    } else {
      fn(key, *std::get<std::string*>(field));
    }
  }
}

bool names_a_file(const std::string& key, const std::string& path) {
  if (path.empty()) return false;
  if (key == "corpus.paths" && path == "-") return false;
  if (key == "checkpoint.resume" && path == "auto") return false;
  return true;
}

// Makes every relative input path absolute against `base` (an absolute directory).
void resolve_input_paths(Config& config, const std::filesystem::path& base) {
  for_each_input_path(config, [&](const std::string& key, std::string& path) {
    if (!names_a_file(key, path) || std::filesystem::path(path).is_absolute()) return;
    path = (base / path).lexically_normal().string();
  });
}

}  // namespace

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  const std::string text = path.empty() ? std::string() : read_config_file(path);
  Config config = load_config_text(text, path.empty() ? "<defaults>" : path, {});
  std::error_code ec;
  const std::filesystem::path cwd = std::filesystem::current_path(ec);
  if (ec) throw ConfigError("cannot resolve the config's paths: the current directory is unreadable: " + ec.message());
  if (!path.empty()) resolve_input_paths(config, (cwd / path).parent_path().lexically_normal());
  // What is still relative came from --set (the file's are absolute now): the shell's.
  for (const auto& assignment : overrides) apply_config_override(schema(), &config, assignment);
  resolve_input_paths(config, cwd);
  expand_run_dir(config.run, "");
  return config;
}

std::vector<std::string> missing_config_inputs(const Config& config, bool needs_corpus) {
  std::vector<std::string> missing;
  Config& c = const_cast<Config&>(config);   // for_each_input_path only reads here
  if (needs_corpus && config.corpus.paths.empty() && !config.corpus.synthetic)
    missing.push_back("corpus.paths is empty: name the corpus files (corpus.paths = [\"a.txt\", \"dir/*.xz\"], or "
                      "--set corpus.paths=a.txt) or set corpus.synthetic = true for the planted-relation corpus");
  if (needs_corpus && !config.corpus.paths.empty() && config.corpus.synthetic)
    missing.push_back("corpus.synthetic = true and corpus.paths are both set: choose one (--set "
                      "corpus.synthetic=false trains on corpus.paths)");
  const std::string tokenizer = config_value_text(config, "tokens.tokenizer");
  for_each_input_path(c, [&](const std::string& key, std::string& path) {
    // Standard input that is a terminal would wait for typing (Note [Corpus from standard input]).
    if (key == "corpus.paths" && path == "-" && needs_corpus && ::isatty(STDIN_FILENO) == 1)
      missing.push_back("corpus.paths: '-' is standard input, which is a terminal here: pipe the corpus in "
                        "(`xzcat corpus.xz | loom train RUN.toml --set corpus.paths=-`) or name its files");
    if (!names_a_file(key, path)) return;
    if (key == "corpus.paths" && !needs_corpus) return;
    // A char vocabulary that is not there yet is learned and written there.
    if (key == "tokens.vocab" && tokenizer == "\"char\"") return;
    if (key == "corpus.paths" && path.find_first_of("*?[") != std::string::npos) {
      glob_t g{};
      const int rc = ::glob(path.c_str(), 0, nullptr, &g);
      const bool matched = rc == 0 && g.gl_pathc > 0;
      globfree(&g);
      if (!matched) missing.push_back(key + ": the pattern " + path + " matches no file");
      return;
    }
    std::error_code ec;
    if (!std::filesystem::exists(path, ec)) missing.push_back(key + ": " + path + " does not exist");
  });
  return missing;
}

std::string config_to_toml(const Config& config) { return format_config_toml(schema(), &config); }

std::string describe_config_schema() {
  const Config defaults;
  return describe_config(schema(), &defaults);
}

std::vector<std::string> config_keys() { return config_key_names(schema()); }

std::string config_value_text(const Config& config, std::string_view key) {
  const size_t dot = key.find('.');
  for (const ConfigSectionInfo& section : schema()) {
    if (dot == std::string_view::npos || key.substr(0, dot) != section.name) continue;
    for (const ConfigKeyInfo& info : section.keys)
      if (key.substr(dot + 1) == info.key)
        return config_format_value(info.field(section.section(const_cast<Config*>(&config))));
  }
  throw ConfigError("no config key '" + std::string(key) + "'");
}

std::string expand_run_dir(const std::string& dir, const std::string& name, const std::string& job_id) {
  std::string out;
  std::size_t pos = 0;
  while (pos < dir.size()) {
    const std::size_t open = dir.find('{', pos);
    out += dir.substr(pos, open - pos);
    if (open == std::string::npos) break;
    const std::size_t close = dir.find('}', open);
    const std::string placeholder = dir.substr(open, close == std::string::npos ? close : close - open + 1);
    if (placeholder == "{name}") {
      out += name;
    } else if (placeholder == "{job}") {
      out += job_id.empty() ? "local" : job_id;
    } else {
      throw ConfigError("config key 'run.dir' (\"" + dir + "\") has an unknown placeholder '" +
                        placeholder + "'; known placeholders: {name}, {job}");
    }
    pos = close + 1;
  }
  return out;
}

}  // namespace loom
