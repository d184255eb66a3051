#include "models/model.h"

#include "core/optimizer.h"
#include "core/param_store.h"

namespace loom {

std::string_view model_kind_list() { return "glove, word2vec, bert, gpt"; }

std::vector<OptimizerSlot> optimizer_slots_of(const Optimizer& optimizer, const ParamStore& params) {
  std::vector<OptimizerSlot> slots;
  for (int i = 0; i < params.size(); ++i)
    for (const std::string& s : optimizer.slot_names())
      slots.push_back({params.entry(i).name, s, optimizer.slot_view(i, s)});
  return slots;
}

void read_optimizer_slots(const CheckpointReader& reader, const Optimizer& optimizer, const ParamStore& params) {
  for (int i = 0; i < params.size(); ++i)
    for (const std::string& s : optimizer.slot_names())
      reader.read_slot(params.entry(i).name, s, optimizer.slot_view(i, s));
}

}  // namespace loom
