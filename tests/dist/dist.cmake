# Unit tests of dist/ that need no MPI launch: the watchdog with fake hooks, launcher env.
loom_add_test(test_dist
  SOURCES ${LOOM_TEST_DIR}/test_watchdog.cpp ${LOOM_TEST_DIR}/test_launcher.cpp
  LIBS loom_dist)
