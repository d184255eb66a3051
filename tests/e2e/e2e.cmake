loom_add_test(test_e2e_selftest
  SOURCES ${LOOM_TEST_DIR}/test_selftest.cpp
  LIBS nlohmann_json::nlohmann_json
  LABELS e2e TIMEOUT 600)
add_dependencies(test_e2e_selftest loom)
