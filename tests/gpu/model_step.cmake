# One whole GPT and BERT training step on a GPU against the CPU's, in fp32 and bf16
# (label: gpu); built only with CUDA, skips visibly without a GPU.
if(LOOM_WITH_CUDA)
  loom_add_test(test_model_step_gpu
    SOURCES ${LOOM_TEST_DIR}/test_model_step_gpu.cpp
    LIBS loom_models
    LABELS gpu)
endif()
