# io/: the Tokenizer interface over BPE and characters, and TokenWindows (the GPT data
# order over memory-mapped token shards).
loom_add_test(test_token_windows
  SOURCES ${LOOM_TEST_DIR}/test_token_windows.cpp ${LOOM_TEST_DIR}/test_tokenizer_interface.cpp
  LIBS loom_io)
