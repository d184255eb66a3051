# `loom export --format word2vec-full` and gensim continuing the training from it (label: e2e;
# needs python3 with gensim and numpy: skipped visibly without them, failed under CI).
loom_add_test(test_e2e_word2vec_full
  SOURCES ${LOOM_TEST_DIR}/word2vec_full_test.cpp
  LABELS e2e TIMEOUT 600)
target_compile_definitions(test_e2e_word2vec_full PRIVATE LOOM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(test_e2e_word2vec_full loom)
