# Every CUDA kernel family against the CPU reference (label: gpu); built only with CUDA,
# skips visibly without a GPU (LOOM_SKIP_NO_GPU).
if(LOOM_WITH_CUDA)
  loom_add_test(test_kernels_gpu
    SOURCES ${LOOM_TEST_DIR}/test_kernels_gpu.cpp
    LIBS loom_core
    LABELS gpu)
endif()
