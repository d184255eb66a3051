#pragma once
// The config sections that model kinds bring with them ([glove], [word2vec], [gpt], ...).
//
// Note [Model sections]
// The engine's own sections ([run], [checkpoint], [corpus], ...) are members of Config,
// generated from config_schema.h. A model kind's section is declared where the kind is
// registered (launch/kinds/<kind>.cpp): LOOM_MODEL_SECTION defines its struct from a
// table of rows written exactly like config_schema.h's, and LOOM_REGISTER_MODEL_SECTION
// adds it to the schema at static-initialisation time. Config keeps one object of each
// registered section in `Config::models`, at its defaults until a file or --set changes
// it; `config.models.get<GloveSection>()` reads it. The loader, the TOML writer,
// --describe and did-you-mean treat these sections exactly like the engine's, so adding
// a model never edits config_schema.h.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "launch/config/config_schema.h"

namespace loom {

struct ModelSectionType {
  const char* name;                                   // the TOML section name
  std::shared_ptr<void> (*make)();                    // an object at its defaults
  std::shared_ptr<void> (*copy)(const void* from);
  bool (*equal)(const void* a, const void* b);
  ConfigSectionInfo (*info)();                        // schema record; its root is a Config
};

// Called by LOOM_REGISTER_MODEL_SECTION before main; returns true.
bool register_model_section(const ModelSectionType& type);
// In registration order (sorted by name, so the order does not depend on the link order).
const std::vector<ModelSectionType>& model_section_types();

// The values train.model accepts: each registered model kind's name, "a|b|c" in name
// order. A kind registers its name with LOOM_REGISTER_MODEL (launch/pipeline/model_registry.h).
bool register_model_kind_name(const char* name);
std::string model_kind_names();

// One object per registered section, copied and compared by value.
class ModelSections {
 public:
  ModelSections();
  ModelSections(const ModelSections& other);
  ModelSections& operator=(const ModelSections& other);
  ModelSections(ModelSections&&) noexcept = default;
  ModelSections& operator=(ModelSections&&) noexcept = default;
  bool operator==(const ModelSections& other) const;

  // The section object named `name`; LOOM_ASSERT that it is registered.
  void* find(std::string_view name) const;
  template <class T> T& get() { return *static_cast<T*>(find(T::kSectionName)); }
  template <class T> const T& get() const { return *static_cast<const T*>(find(T::kSectionName)); }

 private:
  std::vector<std::shared_ptr<void>> objects_;   // in model_section_types() order
};

// The section `name` inside a Config passed as void* (the schema's accessor).
void* model_section_of(void* config_root, const char* name);

}  // namespace loom

// struct Type { kSectionName; one field per row; == } for a model's section table.
#define LOOM_MODEL_SECTION(member, Type, TABLE)             \
  struct Type {                                             \
    static constexpr const char* kSectionName = #member;    \
    LOOM_CONFIG_FIELDS(TABLE)                               \
    bool operator==(const Type&) const = default;           \
  };

// Registers Type (defined by LOOM_MODEL_SECTION) with its table; at namespace scope in a
// .cpp of launch/kinds/.
#define LOOM_REGISTER_MODEL_SECTION(Type, TABLE, help_text)                                        \
  [[maybe_unused]] static const bool loom_model_section_##Type = ::loom::register_model_section(   \
      {Type::kSectionName, [] { return std::shared_ptr<void>(std::make_shared<Type>()); },         \
       [](const void* from) {                                                                      \
         return std::shared_ptr<void>(std::make_shared<Type>(*static_cast<const Type*>(from)));    \
       },                                                                                          \
       [](const void* a, const void* b) {                                                          \
         return *static_cast<const Type*>(a) == *static_cast<const Type*>(b);                      \
       },                                                                                          \
       [] {                                                                                        \
         using SectionT = Type;                                                                    \
         return ::loom::ConfigSectionInfo{                                                         \
             Type::kSectionName, help_text,                                                        \
             [](void* root) -> void* { return ::loom::model_section_of(root, Type::kSectionName); }, \
             {TABLE(LOOM_CONFIG_KEY_BOOL, LOOM_CONFIG_KEY_INT, LOOM_CONFIG_KEY_REAL,               \
                    LOOM_CONFIG_KEY_STR, LOOM_CONFIG_KEY_ENUM, LOOM_CONFIG_KEY_LIST)}};            \
       }})
