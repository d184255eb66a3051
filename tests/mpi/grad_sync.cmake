# GradSync (dist/grad_sync.h) on the MPI world: bucketed async = blocking allreduce, bit for
# bit; launch order observed through a recording Communicator.
loom_add_mpi_test(test_mpi_grad_sync
  SOURCES ${LOOM_TEST_DIR}/test_grad_sync.cpp
  LIBS loom_dist
  NP 1 2 3)
