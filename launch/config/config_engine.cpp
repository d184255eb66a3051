// Schema-driven TOML reading, checking and writing; see config_engine.h.
#include "launch/config/config_engine.h"

#include <fmt/format.h>

#include <toml++/toml.h>

#include <algorithm>
#include <cctype>
#include <cmath>

#include "core/error.h"
#include "launch/config/config_format.h"

namespace loom {
namespace {

// Where a value came from, as a phrase that follows the key: "at run.toml:4" or
// "in --set comm.timeout_s=abc".
struct Where {
  std::string phrase;
};

Where file_where(const std::string& origin, const toml::source_region& source) {
  return {fmt::format("at {}:{}", origin, source.begin.line)};
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string node_type_phrase(const toml::node& node) {
  switch (node.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "a list";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    case toml::node_type::date: return "a date";
    case toml::node_type::time: return "a time";
    case toml::node_type::date_time: return "a date-time";
    default: return "nothing";
  }
}

const ConfigSectionInfo* find_section(const ConfigSchema& schema, std::string_view name) {
  for (const auto& section : schema)
    if (name == section.name) return &section;
  return nullptr;
}

const ConfigKeyInfo* find_key(const ConfigSectionInfo& section, std::string_view key) {
  for (const auto& info : section.keys)
    if (key == info.key) return &info;
  return nullptr;
}

// Note [Suggestions]: a near miss is scored against every key of every section, both as
// "section.key" and as the bare key (plus 1 when the section differs), so `[comm] port`
// finds 'status.port' and a top-level `seed` finds 'run.seed'. A suggestion is made
// only when the score is small next to the length of what was typed.
std::string suggest_key(const ConfigSchema& schema, std::string_view section, std::string_view key) {
  const std::string typed = lower(section) + "." + lower(key);
  std::size_t best_score = std::string::npos;
  std::string best;
  for (const auto& s : schema) {
    for (const auto& k : s.keys) {
      const std::string full = std::string(s.name) + "." + k.key;
      const std::size_t by_key = config_edit_distance(lower(key), k.key) + (section == s.name ? 0 : 1);
      const std::size_t score = std::min(config_edit_distance(typed, full), by_key);
      if (score < best_score) best_score = score, best = full;
    }
  }
  if (best.empty() || best_score > std::max<std::size_t>(2, key.size() / 3)) return "";
  return fmt::format("; did you mean '{}'?", best);
}

std::string suggest_section(const ConfigSchema& schema, std::string_view name) {
  std::vector<std::string> names;
  for (const auto& s : schema) names.emplace_back(s.name);
  const std::string best = closest_name(name, names);
  return best.empty() ? "" : fmt::format("; did you mean '[{}]'?", best);
}

std::string known_sections(const ConfigSchema& schema) {
  std::string out;
  for (const auto& s : schema) out += (out.empty() ? "" : ", ") + std::string(s.name);
  return out;
}

std::string_view trim(std::string_view s) {
  const std::size_t first = s.find_first_not_of(" \t");
  if (first == std::string_view::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

bool in_range(const ConfigRange& r, double v) {
  if (std::isnan(v)) return false;
  if (r.has_lo && (r.lo_open ? !(v > r.lo) : !(v >= r.lo))) return false;
  if (r.has_hi && (r.hi_open ? !(v < r.hi) : !(v <= r.hi))) return false;
  return true;
}

[[noreturn]] void throw_type(const std::string& name, const Where& where, const ConfigKeyInfo& info,
                             const std::string& got) {
  throw ConfigError(fmt::format("config key '{}' {} must be {}, got {}", name, where.phrase,
                                config_expected_phrase(info), got));
}

void check_range(const std::string& name, const Where& where, const ConfigKeyInfo& info, double v,
                 const std::string& shown) {
  if (in_range(info.range, v)) return;
  throw ConfigError(fmt::format("config key '{}' {} is {}, outside the allowed range {}", name,
                                where.phrase, shown, config_format_range(info.range)));
}

void check_enum(const std::string& name, const Where& where, const ConfigKeyInfo& info,
                const std::string& v) {
  for (const auto& allowed : config_split_allowed(info.allowed))
    if (v == allowed) return;
  throw ConfigError(fmt::format("config key '{}' {} is '{}'; allowed values: {}", name,
                                where.phrase, v, config_format_allowed(info.allowed)));
}

std::vector<std::string> read_string_list(const std::string& name, const Where& where,
                                          const ConfigKeyInfo& info, const toml::node& node) {
  const toml::array* arr = node.as_array();
  if (arr == nullptr) throw_type(name, where, info, node_type_phrase(node));
  std::vector<std::string> out;
  for (std::size_t i = 0; i < arr->size(); ++i) {
    const auto* s = (*arr)[i].as_string();
    if (s == nullptr)
      throw ConfigError(fmt::format("config key '{}' {} must be a list of strings, but item {} is {}",
                                    name, where.phrase, i, node_type_phrase((*arr)[i])));
    out.push_back(s->get());
  }
  return out;
}

// Checks `node` against `info` and stores it into the section object.
void assign(const std::string& name, const Where& where, const ConfigKeyInfo& info,
            const toml::node& node, void* section) {
  ConfigFieldRef field = info.field(section);
  switch (info.kind) {
    case ConfigKind::kBool: {
      const auto v = node.value_exact<bool>();
      if (!v) throw_type(name, where, info, node_type_phrase(node));
      *std::get<bool*>(field) = *v;
      return;
    }
    case ConfigKind::kInt: {
      const auto v = node.value_exact<std::int64_t>();
      if (!v) throw_type(name, where, info, node_type_phrase(node));
      check_range(name, where, info, static_cast<double>(*v), std::to_string(*v));
      *std::get<std::int64_t*>(field) = *v;
      return;
    }
    case ConfigKind::kReal: {
      if (!node.is_number()) throw_type(name, where, info, node_type_phrase(node));
      const double v = node.is_integer() ? static_cast<double>(*node.value_exact<std::int64_t>())
                                         : *node.value_exact<double>();
      // TOML writes inf and nan as numbers; no setting means them (an open range such as
      // "> 0" would let inf through and train to NaN), so every real key refuses them.
      if (!std::isfinite(v))
        throw ConfigError(fmt::format("config key '{}' {} is {}: it must be a finite number", name,
                                      where.phrase, config_format_double(v)));
      check_range(name, where, info, v, config_format_double(v));
      *std::get<double*>(field) = v;
      return;
    }
    case ConfigKind::kString:
    case ConfigKind::kEnum: {
      const auto v = node.value_exact<std::string>();
      if (!v) throw_type(name, where, info, node_type_phrase(node));
      if (info.kind == ConfigKind::kEnum) check_enum(name, where, info, *v);
      *std::get<std::string*>(field) = *v;
      return;
    }
    case ConfigKind::kStringList:
      *std::get<std::vector<std::string>*>(field) = read_string_list(name, where, info, node);
      return;
  }
}

void apply_section(const ConfigSchema& schema, const ConfigSectionInfo& section, void* root,
                   const toml::table& table, const std::string& origin) {
  void* object = section.section(root);
  for (auto&& [key, node] : table) {
    const std::string name = fmt::format("{}.{}", section.name, key.str());
    const Where where = file_where(origin, key.source());
    const ConfigKeyInfo* info = find_key(section, key.str());
    if (info == nullptr)
      throw ConfigError(fmt::format("unknown config key '{}' {}{}", name, where.phrase,
                                    suggest_key(schema, section.name, key.str())));
    assign(name, where, *info, node, object);
  }
}

}  // namespace

std::size_t config_edit_distance(std::string_view a, std::string_view b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string closest_name(std::string_view typed, const std::vector<std::string>& names) {
  std::size_t best_score = std::string::npos;
  std::string best;
  for (const std::string& n : names) {
    const std::size_t score = config_edit_distance(lower(typed), lower(n));
    if (score < best_score) best_score = score, best = n;
  }
  if (best.empty() || best_score > std::max<std::size_t>(2, typed.size() / 3)) return "";
  return best;
}

void apply_config_text(const ConfigSchema& schema, void* root, std::string_view text,
                       const std::string& origin) {
  toml::table doc;
  try {
    doc = toml::parse(text, origin);
  } catch (const toml::parse_error& e) {
    throw ConfigError(fmt::format("malformed TOML at {}:{}:{}: {}", origin, e.source().begin.line,
                                  e.source().begin.column, e.description()));
  }
  for (auto&& [key, node] : doc) {
    const Where where = file_where(origin, key.source());
    const ConfigSectionInfo* section = find_section(schema, key.str());
    if (section == nullptr && node.is_table())
      throw ConfigError(fmt::format("unknown config section '[{}]' {}{} (sections: {})", key.str(),
                                    where.phrase, suggest_section(schema, key.str()),
                                    known_sections(schema)));
    if (section == nullptr)
      throw ConfigError(fmt::format("config key '{}' {} is outside any section{}", key.str(),
                                    where.phrase, suggest_key(schema, "", key.str())));
    if (!node.is_table())
      throw ConfigError(fmt::format("'{}' {} must be a section ([{}]), got {}", key.str(),
                                    where.phrase, key.str(), node_type_phrase(node)));
    apply_section(schema, *section, root, *node.as_table(), origin);
  }
}

void apply_config_override(const ConfigSchema& schema, void* root, std::string_view assignment) {
  const Where where{fmt::format("in --set {}", assignment)};
  const std::size_t eq = assignment.find('=');
  const std::size_t dot = assignment.substr(0, eq).find('.');
  if (eq == std::string_view::npos || dot == std::string_view::npos)
    throw ConfigError(fmt::format("--set {} must have the form section.key=value "
                                  "(e.g. --set comm.timeout_s=60)", assignment));
  const std::string_view section_name = trim(assignment.substr(0, dot));
  const std::string_view key = trim(assignment.substr(dot + 1, eq - dot - 1));
  const std::string_view value = trim(assignment.substr(eq + 1));
  const std::string name = fmt::format("{}.{}", section_name, key);
  const ConfigSectionInfo* section = find_section(schema, section_name);
  const ConfigKeyInfo* info = section == nullptr ? nullptr : find_key(*section, key);
  if (info == nullptr)
    throw ConfigError(fmt::format("unknown config key '{}' {}{}", name, where.phrase,
                                  suggest_key(schema, section_name, key)));

  // The value as a TOML document of one key, so every TOML value form works.
  toml::table doc;
  bool parsed = true;
  try {
    const std::string doc_text = fmt::format("v = {}", value);
    doc = toml::parse(std::string_view(doc_text), std::string_view("--set"));
  } catch (const toml::parse_error&) {
    parsed = false;
  }
  parsed = parsed && doc.size() == 1 && doc.contains("v");
  const bool is_text = info->kind == ConfigKind::kString || info->kind == ConfigKind::kEnum;
  if (info->kind == ConfigKind::kStringList && !(parsed && doc["v"].is_array())) {
    // Note [A list from one word]: `--set corpus.paths=small.txt` means the list of that one
    // file, as a shell user writes it; '' is the empty list. Text that opens a TOML list but
    // does not parse is an error showing both accepted forms.
    if (value.starts_with('['))
      throw ConfigError(fmt::format("config key '{}' {} is not a TOML list of strings; write one file as "
                                    "--set {}=a.txt, several as --set '{}=[\"a.txt\", \"b.txt\"]'",
                                    name, where.phrase, name, name));
    toml::array one;
    if (parsed && doc["v"].is_string()) one.push_back(*doc["v"].value<std::string>());
    else if (!value.empty()) one.push_back(std::string(value));
    doc.insert_or_assign("v", std::move(one));
  } else if (is_text && !(parsed && doc["v"].is_string())) {
    doc.insert_or_assign("v", std::string(value));  // a bare word is the string itself
  } else if (!parsed) {
    throw_type(name, where, *info, fmt::format("'{}', which is not a TOML value", value));
  }
  assign(name, where, *info, *doc.get("v"), section->section(root));
}

std::string format_config_toml(const ConfigSchema& schema, const void* root) {
  std::string out = "# loom config: every key, resolved (defaults, file, then --set)\n";
  void* mutable_root = const_cast<void*>(root);  // accessors are shared with the writer path
  for (const auto& section : schema) {
    out += fmt::format("\n[{}]\n", section.name);
    void* object = section.section(mutable_root);
    for (const auto& info : section.keys)
      out += fmt::format("{} = {}\n", info.key, config_format_value(info.field(object)));
  }
  return out;
}

std::vector<std::string> config_key_names(const ConfigSchema& schema) {
  std::vector<std::string> out;
  for (const auto& section : schema)
    for (const auto& info : section.keys) out.push_back(fmt::format("{}.{}", section.name, info.key));
  return out;
}

}  // namespace loom
