# GPT through the `loom` binary on a generated character corpus: np 1, 2, 3 agree on the loss
# curve and the parameters; held-out loss, `loom eval`, `loom generate`, `loom export`; bad
# inputs refused naming their cause (label: e2e).
loom_add_test(test_e2e_gpt
  SOURCES ${LOOM_TEST_DIR}/gpt_test.cpp
  LIBS loom_io loom_core nlohmann_json::nlohmann_json
  LABELS e2e TIMEOUT 600)
add_dependencies(test_e2e_gpt loom)
