#pragma once
// The schema-driven half of the config: reads TOML text and `--set section.key=value`
// overrides into any root object described by a list of ConfigSectionInfo (loom's Config,
// or a test's own struct), checks type, range and allowed values, writes the object back
// as TOML and describes the schema as a table. toml++ stays inside config_engine.cpp.
//
// Every failure is a loom::ConfigError naming the key and where it came from: "file:line"
// for a file, "--set section.key=value" for an override. Unknown names get a
// "did you mean 'section.key'?" suggestion, searched across all sections.
#include <string>
#include <string_view>
#include <vector>

#include "launch/config/config_schema.h"

namespace loom {

using ConfigSchema = std::vector<ConfigSectionInfo>;

// Parses `text` (TOML; `origin` names it in messages, e.g. the file path) and assigns each
// key it sets into `root`. Keys it does not mention keep their current value.
void apply_config_text(const ConfigSchema& schema, void* root, std::string_view text,
                       const std::string& origin);

// Applies one "section.key=value". The value is read as a TOML value; for string and
// enum keys text that is not a TOML string is taken verbatim (`--set progress.bar=off`).
void apply_config_override(const ConfigSchema& schema, void* root, std::string_view assignment);

// Every key of every section, as TOML text that apply_config_text reads back exactly.
std::string format_config_toml(const ConfigSchema& schema, const void* root);

// One row per key: section.key, type, default (read from `defaults`), range or allowed
// values, help.
std::string describe_config(const ConfigSchema& schema, const void* defaults);

// "section.key" for every key, in schema order.
std::vector<std::string> config_key_names(const ConfigSchema& schema);

// Levenshtein distance; exposed for tests of the suggestions.
std::size_t config_edit_distance(std::string_view a, std::string_view b);

// The name in `names` nearest to `typed` (case-insensitive edit distance), or "" when even
// the nearest is too far to be a slip of the keyboard (more than max(2, length/3) edits).
// Config sections and `loom` subcommands use it for "did you mean".
std::string closest_name(std::string_view typed, const std::vector<std::string>& names);

}  // namespace loom
