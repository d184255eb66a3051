# `loom tokenizer train` and `loom tokenize` through the binary at np 1, 2, 3 (label: e2e).
loom_add_test(test_e2e_tokens
  SOURCES ${LOOM_TEST_DIR}/tokens_test.cpp
  LIBS loom_io
  LABELS e2e TIMEOUT 600)
add_dependencies(test_e2e_tokens loom)
