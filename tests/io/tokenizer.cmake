# io/ tokenizers: GPT-2 byte-level BPE (pre-tokenizer, merges, files, training), the
# character tokenizer and token shards. test_bpe_hf holds loom's ids against Hugging Face
# `tokenizers` (from the virtual environment scripts/setup.sh makes).
loom_add_test(test_tokenizers
  SOURCES ${LOOM_TEST_DIR}/test_bpe_pretokenize.cpp ${LOOM_TEST_DIR}/test_bpe_tokenizer.cpp
          ${LOOM_TEST_DIR}/test_bpe_train.cpp ${LOOM_TEST_DIR}/test_char_tokenizer.cpp
          ${LOOM_TEST_DIR}/test_token_shard.cpp
  LIBS loom_io)

loom_add_test(test_bpe_hf
  SOURCES ${LOOM_TEST_DIR}/test_bpe_hf.cpp
  LIBS loom_io nlohmann_json::nlohmann_json
  TIMEOUT 900)
set_property(TEST test_bpe_hf APPEND PROPERTY ENVIRONMENT
             "LOOM_PYTHON=${PROJECT_SOURCE_DIR}/.venv/bin/python"
             "LOOM_HF_BPE_TOOL=${PROJECT_SOURCE_DIR}/tests/tools/hf_bpe.py"
             "LOOM_SHARED_DATA=${PROJECT_SOURCE_DIR}/../shared/data")

# bpe_tool: train / encode (speed) / shard from the command line, until the CLI has them.
add_executable(bpe_tool ${LOOM_TEST_DIR}/bpe_tool.cpp)
loom_target_defaults(bpe_tool)
target_link_libraries(bpe_tool PRIVATE loom_io)

# BERT's WordPiece: the tokenizer and trainer alone (test_wordpiece), its ids and decodes
# against Hugging Face tokenizers' BertWordPieceTokenizer and transformers' BertTokenizerFast
# (test_wordpiece_hf, tests/python/hf_wordpiece.py), and `loom tokenizer train --kind
# wordpiece` byte-identical at np 1, 2 and 3 under mpirun (test_wordpiece_train_mpi).
loom_add_test(test_wordpiece
  SOURCES ${LOOM_TEST_DIR}/test_wordpiece.cpp
  LIBS loom_io)

loom_add_test(test_wordpiece_hf
  SOURCES ${LOOM_TEST_DIR}/test_wordpiece_hf.cpp
  LIBS loom_io nlohmann_json::nlohmann_json
  TIMEOUT 900)
set_property(TEST test_wordpiece_hf APPEND PROPERTY ENVIRONMENT
             "LOOM_PYTHON=${PROJECT_SOURCE_DIR}/.venv/bin/python"
             "LOOM_HF_WORDPIECE_TOOL=${PROJECT_SOURCE_DIR}/tests/python/hf_wordpiece.py"
             "LOOM_SHARED_DATA=${PROJECT_SOURCE_DIR}/../shared/data")

loom_add_test(test_wordpiece_train_mpi
  SOURCES ${LOOM_TEST_DIR}/test_wordpiece_train_mpi.cpp
  LIBS loom_io
  LABELS mpi
  TIMEOUT 600)
add_dependencies(test_wordpiece_train_mpi loom)

# wordpiece_tool: encode a file's lines on N threads (bench/wordpiece.sh).
add_executable(wordpiece_tool ${LOOM_TEST_DIR}/wordpiece_tool.cpp)
loom_target_defaults(wordpiece_tool)
target_link_libraries(wordpiece_tool PRIVATE loom_io ZLIB::ZLIB)
