# io/ tokenizers: GPT-2 byte-level BPE (pre-tokenizer, merges, files, training), the
# character tokenizer and token shards. test_bpe_hf holds loom's ids against Hugging Face
# `tokenizers` (from the virtual environment scripts/setup.sh makes).
loom_add_test(test_tokenizers
  SOURCES ${LOOM_TEST_DIR}/test_bpe_pretokenize.cpp ${LOOM_TEST_DIR}/test_bpe_tokenizer.cpp
          ${LOOM_TEST_DIR}/test_bpe_train.cpp ${LOOM_TEST_DIR}/test_char_tokenizer.cpp
          ${LOOM_TEST_DIR}/test_token_shard.cpp
  LIBS loom_io)
