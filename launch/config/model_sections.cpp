// Registered model sections and their per-Config objects; see model_sections.h.
#include "launch/config/model_sections.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "launch/config/config.h"

namespace loom {
namespace {

std::vector<ModelSectionType>& types() {
  static std::vector<ModelSectionType> registered;
  return registered;
}

std::vector<std::string>& kind_names() {
  static std::vector<std::string> names;
  return names;
}

}  // namespace

bool register_model_kind_name(const char* name) {
  std::vector<std::string>& names = kind_names();
  names.insert(std::upper_bound(names.begin(), names.end(), std::string(name)), name);
  return true;
}

std::string model_kind_names() {
  std::string out;
  for (const std::string& n : kind_names()) out += (out.empty() ? "" : "|") + n;
  return out;
}

bool register_model_section(const ModelSectionType& type) {
  std::vector<ModelSectionType>& all = types();
  for (const ModelSectionType& t : all)
    LOOM_ASSERT(std::strcmp(t.name, type.name) != 0, "config section registered twice");
  auto at = std::find_if(all.begin(), all.end(), [&](const ModelSectionType& t) { return std::strcmp(t.name, type.name) > 0; });
  all.insert(at, type);
  return true;
}

const std::vector<ModelSectionType>& model_section_types() { return types(); }

ModelSections::ModelSections() {
  for (const ModelSectionType& t : types()) objects_.push_back(t.make());
}

ModelSections::ModelSections(const ModelSections& other) {
  const std::vector<ModelSectionType>& all = types();
  for (size_t i = 0; i < other.objects_.size(); ++i) objects_.push_back(all[i].copy(other.objects_[i].get()));
}

ModelSections& ModelSections::operator=(const ModelSections& other) {
  if (this != &other) {
    ModelSections copy(other);
    objects_ = std::move(copy.objects_);
  }
  return *this;
}

bool ModelSections::operator==(const ModelSections& other) const {
  if (objects_.size() != other.objects_.size()) return false;
  const std::vector<ModelSectionType>& all = types();
  for (size_t i = 0; i < objects_.size(); ++i)
    if (!all[i].equal(objects_[i].get(), other.objects_[i].get())) return false;
  return true;
}

void* ModelSections::find(std::string_view name) const {
  const std::vector<ModelSectionType>& all = types();
  for (size_t i = 0; i < all.size() && i < objects_.size(); ++i)
    if (name == all[i].name) return objects_[i].get();
  LOOM_ASSERT(false, "config section not registered (is its launch/kinds/ file linked?)");
  return nullptr;
}

void* model_section_of(void* config_root, const char* name) { return static_cast<Config*>(config_root)->models.find(name); }

}  // namespace loom
