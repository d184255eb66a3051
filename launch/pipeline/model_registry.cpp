// The model registry; see model_registry.h.
#include "launch/pipeline/model_registry.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace loom {
namespace {

std::vector<ModelKind>& kinds() {
  static std::vector<ModelKind> registered;
  return registered;
}

}  // namespace

bool register_model_kind(const ModelKind& kind) {
  std::vector<ModelKind>& all = kinds();
  for (const ModelKind& k : all) LOOM_ASSERT(std::strcmp(k.name, kind.name) != 0, "model kind registered twice");
  auto at = std::find_if(all.begin(), all.end(), [&](const ModelKind& k) { return std::strcmp(k.name, kind.name) > 0; });
  all.insert(at, kind);
  return true;
}

const std::vector<ModelKind>& model_kinds() { return kinds(); }

const ModelKind& find_model_kind(std::string_view name) {
  for (const ModelKind& k : kinds())
    if (name == k.name) return k;
  throw ConfigError("train.model = '" + std::string(name) + "' is not a model kind this loom knows (known: " +
                    model_kind_names() + ")");
}

}  // namespace loom
