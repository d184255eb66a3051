# `loom train` with run.device = cuda through the binary, and checkpoints moving between the
# GPU and the CPU (label: gpu); built only with CUDA, skips visibly without a GPU.
if(LOOM_WITH_CUDA)
  loom_add_test(test_gpu_resume
    SOURCES ${LOOM_TEST_DIR}/test_gpu_resume.cpp
    LIBS loom_io loom_core nlohmann_json::nlohmann_json
    LABELS gpu TIMEOUT 600)
  add_dependencies(test_gpu_resume loom)
endif()
