# Config: schema tables, TOML + --set loading, errors, round trip, --describe.
loom_add_test(test_config
  SOURCES ${LOOM_TEST_DIR}/test_config.cpp
  LIBS loom_launch)
target_compile_definitions(test_config PRIVATE LOOM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

# The model registry: a kind defined only in the test trains through `loom train`'s pipeline.
loom_add_test(test_registry
  SOURCES ${LOOM_TEST_DIR}/test_registry.cpp
  LIBS loom_launch)
