// Text forms of config values and schema records; see config_format.h.
#include "launch/config/config_format.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>

#include "launch/config/config_engine.h"

namespace loom {
namespace {

// A bound as written in a range: integral values without a fraction.
std::string format_bound(double v) {
  if (std::nearbyint(v) == v && std::fabs(v) < 9.0e15) return std::to_string(static_cast<std::int64_t>(v));
  return config_format_double(v);
}

std::string format_list(const std::vector<std::string>& items) {
  std::string out = "[";
  for (std::size_t i = 0; i < items.size(); ++i) out += (i ? ", " : "") + config_quote(items[i]);
  return out + "]";
}

}  // namespace

std::string config_kind_name(ConfigKind kind) {
  switch (kind) {
    case ConfigKind::kBool: return "bool";
    case ConfigKind::kInt: return "int";
    case ConfigKind::kReal: return "double";
    case ConfigKind::kString: return "string";
    case ConfigKind::kEnum: return "enum";
    case ConfigKind::kStringList: return "list<string>";
  }
  return "?";
}

std::string config_expected_phrase(const ConfigKeyInfo& info) {
  switch (info.kind) {
    case ConfigKind::kBool: return "a boolean (true or false)";
    case ConfigKind::kInt: return "an integer";
    case ConfigKind::kReal: return "a number";
    case ConfigKind::kString: return "a string";
    case ConfigKind::kEnum: return fmt::format("a string, one of {}", config_format_allowed(info.allowed));
    case ConfigKind::kStringList: return "a list of strings";
  }
  return "?";
}

std::string config_format_range(const ConfigRange& r) {
  if (r.has_lo && r.has_hi)
    return fmt::format("{}{}, {}{}", r.lo_open ? '(' : '[', format_bound(r.lo), format_bound(r.hi),
                       r.hi_open ? ')' : ']');
  if (r.has_lo) return fmt::format("{} {}", r.lo_open ? ">" : ">=", format_bound(r.lo));
  if (r.has_hi) return fmt::format("{} {}", r.hi_open ? "<" : "<=", format_bound(r.hi));
  return "any";
}

std::vector<std::string> config_split_allowed(std::string_view allowed) {
  std::vector<std::string> out;
  while (!allowed.empty()) {
    const std::size_t bar = allowed.find('|');
    out.emplace_back(allowed.substr(0, bar));
    if (bar == std::string_view::npos) break;
    allowed.remove_prefix(bar + 1);
  }
  return out;
}

std::string config_format_allowed(std::string_view allowed) {
  std::string out;
  for (const auto& v : config_split_allowed(allowed)) out += (out.empty() ? "'" : ", '") + v + "'";
  return out;
}

std::string config_format_double(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  char buf[64];
  const auto res = std::to_chars(buf, buf + sizeof buf, v);
  std::string out(buf, res.ptr);
  if (out.find_first_of(".e") == std::string::npos) out += ".0";
  return out;
}

std::string config_quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f)
          out += fmt::format("\\u{:04X}", static_cast<unsigned>(static_cast<unsigned char>(c)));
        else
          out += c;
    }
  }
  return out + "\"";
}

std::string config_format_value(const ConfigFieldRef& field) {
  struct Visitor {
    std::string operator()(bool* v) const { return *v ? "true" : "false"; }
    std::string operator()(std::int64_t* v) const { return std::to_string(*v); }
    std::string operator()(double* v) const { return config_format_double(*v); }
    std::string operator()(std::string* v) const { return config_quote(*v); }
    std::string operator()(std::vector<std::string>* v) const { return format_list(*v); }
  };
  return std::visit(Visitor{}, field);
}

std::string describe_config(const ConfigSchema& schema, const void* defaults) {
  struct Row {
    std::string key, type, def, range, help;
  };
  std::vector<Row> rows = {{"key", "type", "default", "range / allowed", "help"}};
  void* root = const_cast<void*>(defaults);  // read only: the accessors are not const
  for (const auto& section : schema) {
    void* object = section.section(root);
    for (const auto& info : section.keys) {
      std::string range;
      if (info.kind == ConfigKind::kInt || info.kind == ConfigKind::kReal) range = config_format_range(info.range);
      if (info.kind == ConfigKind::kEnum) range = config_format_allowed(info.allowed);
      rows.push_back({fmt::format("{}.{}", section.name, info.key), config_kind_name(info.kind),
                      config_format_value(info.field(object)), range, info.help});
    }
  }
  std::size_t w[4] = {0, 0, 0, 0};
  for (const auto& r : rows) {
    w[0] = std::max(w[0], r.key.size());
    w[1] = std::max(w[1], r.type.size());
    w[2] = std::max(w[2], r.def.size());
    w[3] = std::max(w[3], r.range.size());
  }
  std::string out;
  for (const auto& r : rows)
    out += fmt::format("{:<{}}  {:<{}}  {:<{}}  {:<{}}  {}\n", r.key, w[0], r.type, w[1], r.def, w[2],
                       r.range, w[3], r.help);
  out += "ranges: [ ] include the bound, ( ) exclude it\n";
  return out;
}

}  // namespace loom
