# GradSync's bucket assignment and misuse checks, in process (no MPI); the collectives
# themselves are tested in tests/mpi/grad_sync.cmake.
loom_add_test(test_grad_sync_buckets
  SOURCES ${LOOM_TEST_DIR}/test_grad_sync_buckets.cpp
  LIBS loom_dist)
