#pragma once
// Text forms of config values and schema records, shared by the loader's messages, the
// TOML writer and `loom config --describe`. No toml++ here: values are written by hand
// in TOML syntax (basic strings, shortest round-trip doubles).
#include <string>
#include <string_view>
#include <vector>

#include "launch/config/config_schema.h"

namespace loom {

// "bool", "int", "double", "string", "enum", "list<string>".
std::string config_kind_name(ConfigKind kind);

// What a key accepts, for "must be ...": "an integer", "a number", "one of 'a', 'b'", ...
std::string config_expected_phrase(const ConfigKeyInfo& info);

// "[8, 1073741824]", "(0, 604800]", ">= 0", "> 0", "any"; [ ] inclusive, ( ) exclusive.
std::string config_format_range(const ConfigRange& range);

// "debug|info" -> {"debug", "info"}; and the display form "debug, info".
std::vector<std::string> config_split_allowed(std::string_view allowed);
std::string config_format_allowed(std::string_view allowed);

// Shortest text that reads back to the same double, always with '.', 'e', or inf/nan.
std::string config_format_double(double v);

// A TOML string literal (basic string, escaped).
std::string config_quote(std::string_view s);

// The field's value in TOML syntax.
std::string config_format_value(const ConfigFieldRef& field);

}  // namespace loom
