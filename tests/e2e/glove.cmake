# The GloVe pipeline end to end through the `loom` binary (label: e2e).
loom_add_test(test_e2e_glove
  SOURCES ${LOOM_TEST_DIR}/glove_test.cpp
  LIBS nlohmann_json::nlohmann_json
  LABELS e2e TIMEOUT 900)
target_compile_definitions(test_e2e_glove PRIVATE LOOM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(test_e2e_glove loom)
