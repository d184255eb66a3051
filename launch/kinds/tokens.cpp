// [tokens] (launch/kinds/tokens.h): registered here, read by the token stage and the
// tokenize / tokenizer train commands.
#include "launch/kinds/tokens.h"

namespace loom {

LOOM_REGISTER_MODEL_SECTION(TokensSection, LOOM_CONFIG_TOKENS,
                            "token shards for the transformers: tokenizer, documents, held-out split");

}  // namespace loom
