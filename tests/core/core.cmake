loom_add_test(test_core
  SOURCES ${LOOM_TEST_DIR}/test_tensor.cpp ${LOOM_TEST_DIR}/test_param_store.cpp
          ${LOOM_TEST_DIR}/test_rng.cpp ${LOOM_TEST_DIR}/test_optimizer.cpp
          ${LOOM_TEST_DIR}/test_log.cpp
  LIBS loom_core)
