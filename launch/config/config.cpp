// loom's Config: the schema instance and the public entry points; see config.h.
#include "launch/config/config.h"

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

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

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  const std::string text = path.empty() ? std::string() : read_config_file(path);
  return load_config_text(text, path.empty() ? "<defaults>" : path, overrides);
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
