#include "models/model.h"

namespace loom {

std::string_view model_kind_list() { return "glove, word2vec, bert, gpt"; }

}  // namespace loom
