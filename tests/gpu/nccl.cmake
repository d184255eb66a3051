# NCCL communicator on real GPUs (label: gpu); built only with CUDA, skips without a GPU.
if(LOOM_WITH_CUDA)
  loom_add_mpi_test(test_nccl
    SOURCES ${LOOM_TEST_DIR}/test_nccl.cpp
    LIBS loom_dist
    NP 1 2
    LABELS gpu)
endif()
