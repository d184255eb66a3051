loom_add_test(test_fault_selftest
  SOURCES ${LOOM_TEST_DIR}/selftest_faults.cpp
  LABELS fault TIMEOUT 600)
add_dependencies(test_fault_selftest loom)
