#pragma once
// [tokens]: how the transformer kinds' corpus becomes token shards (the token stage,
// launch/pipeline/token_stage.h; `loom tokenize`; `loom tokenizer train`). The corpus
// files are corpus.paths; corpus.utf8 / lowercase / max_token_bytes belong to the word
// embeddings and are not read here (tokens.invalid_utf8 is this stage's policy).
#include "launch/config/model_sections.h"

namespace loom {

#define LOOM_CONFIG_TOKENS(X_BOOL, X_INT, X_REAL, X_STR, X_ENUM, X_LIST)                         \
  X_ENUM(tokenizer, "bpe", "bpe|wordpiece|char",                                                  \
         "bpe = GPT-2 byte-level BPE (vocab.json + merges.txt); wordpiece = BERT's WordPiece "    \
         "(vocab.txt); char = one token per character")                                           \
  X_STR(vocab, "",                                                                                \
        "bpe: the vocab.json file; wordpiece: BERT's vocab.txt ('' = learned from the corpus "    \
        "into DIR/vocab.txt, tokens.vocab_size tokens); char: the character vocabulary file, "    \
        "learned from the corpus and written there when missing ('' = DIR/char_vocab.txt)")       \
  X_BOOL(lowercase, true,                                                                         \
         "wordpiece: uncased BERT (lower case, accents stripped, as BERT's do_lower_case); false " \
         "= cased (text kept as is)")                                                             \
  X_STR(merges, "", "bpe: the merges.txt file (learn both with `loom tokenizer train`)")          \
  X_STR(dir, "tokens",                                                                            \
        "where the token shards and their manifest go; a relative path is inside the run "        \
        "directory (an absolute one lets several runs share the shards)")                         \
  X_ENUM(documents, "blank_line", "blank_line|line|file",                                         \
         "how documents are delimited in the corpus: blank_line = runs of non-empty lines "       \
         "between empty lines (raw Wikipedia articles), line = each non-empty line, file = each " \
         "file; bpe puts <|endoftext|> after each document, wordpiece [SEP], char the "           \
         "delimiter's text")                                                                      \
  X_REAL(heldout_fraction, 0.1, ConfigRange::between(0, 0.5),                                     \
         "the last fraction of the token stream (by position) held out for evaluation")           \
  X_ENUM(invalid_utf8, "error", "error|replace",                                                  \
         "invalid UTF-8 in the corpus: error (names file and byte) or replace by U+FFFD")         \
  X_INT(vocab_size, 50257, ConfigRange::between(257, 16777216),                                   \
        "`loom tokenizer train`: tokens in all (bpe: <|endoftext|> + 256 bytes + merges; "        \
        "wordpiece: 5 specials + alphabet + ## forms + merges)")                                  \
  X_INT(min_frequency, 2, ConfigRange::at_least(1),                                               \
        "`loom tokenizer train`: a pair seen fewer times is never merged")
LOOM_MODEL_SECTION(tokens, TokensSection, LOOM_CONFIG_TOKENS)

}  // namespace loom
