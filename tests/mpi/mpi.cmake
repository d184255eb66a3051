# MPI integration tests of dist/: every collective as a singleton and under mpirun -np 2, 3.
loom_add_mpi_test(test_mpi_collectives
  SOURCES ${LOOM_TEST_DIR}/test_collectives.cpp ${LOOM_TEST_DIR}/test_collectives_v.cpp
  LIBS loom_dist
  NP 1 2 3)
if(LOOM_WITH_CUDA)
  target_compile_definitions(test_mpi_collectives PRIVATE LOOM_TEST_WITH_NCCL=1)
endif()
