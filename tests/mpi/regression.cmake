# The regression model (tests/support/regression_model.h, built in tests/fault/checkpoint.cmake)
# trained at world sizes 1, 2, 3 against a single process; its step allocates nothing.
loom_add_mpi_test(test_mpi_regression_world_size
  SOURCES ${LOOM_TEST_DIR}/test_regression_world_size.cpp
  LIBS loom_regression_model
  NP 1 2 3)
