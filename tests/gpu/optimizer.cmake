# AdamW, LAMB, the gradient norm and division on a GPU against the CPU (label: gpu); built
# only with CUDA, skips visibly without a GPU.
if(LOOM_WITH_CUDA)
  loom_add_test(test_gpu_optimizer
    SOURCES ${LOOM_TEST_DIR}/test_gpu_optimizer.cpp
    LIBS loom_core
    LABELS gpu)
endif()
