# word2vec through the `loom` binary: the planted corpus at world sizes 1, 2 and 3, the
# exports read back by loom and gensim (label: e2e).
loom_add_test(test_e2e_word2vec
  SOURCES ${LOOM_TEST_DIR}/word2vec_test.cpp
  LIBS nlohmann_json::nlohmann_json
  LABELS e2e TIMEOUT 600)
target_compile_definitions(test_e2e_word2vec PRIVATE LOOM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(test_e2e_word2vec loom)
