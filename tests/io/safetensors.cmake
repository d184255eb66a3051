# io/safetensors: the format Hugging Face loads (loom export --format safetensors). The
# Python `safetensors` package (from the .venv scripts/setup.sh makes) reads loom's files.
loom_add_test(test_safetensors
  SOURCES ${LOOM_TEST_DIR}/test_safetensors.cpp
  LIBS loom_io nlohmann_json::nlohmann_json)
set_property(TEST test_safetensors APPEND PROPERTY ENVIRONMENT
             "LOOM_PYTHON=${PROJECT_SOURCE_DIR}/.venv/bin/python"
             "LOOM_SAFETENSORS_TOOL=${PROJECT_SOURCE_DIR}/tests/python/safetensors_tool.py")
# ctest shows it as skipped (not passed) when the Python reference is missing.
set_tests_properties(test_safetensors PROPERTIES SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]")
