# NCCL communicator and GradSync on real GPUs (label: gpu); built only with CUDA, skip
# visibly without a GPU per rank.
if(LOOM_WITH_CUDA)
  loom_add_mpi_test(test_nccl
    SOURCES ${LOOM_TEST_DIR}/test_nccl.cpp
    LIBS loom_dist
    NP 1 2
    LABELS gpu)
  loom_add_mpi_test(test_nccl_grad_sync
    SOURCES ${LOOM_TEST_DIR}/test_nccl_grad_sync.cpp ${LOOM_TEST_DIR}/gpu_test_kernels.cu
    LIBS loom_dist
    NP 1 2
    LABELS gpu)
endif()
