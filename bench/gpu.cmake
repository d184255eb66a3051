# gpu_step_bench: whole GPT-2 124M / BERT-base training steps on one GPU (bench/gpu.sh runs
# it beside PyTorch's bench/gpu_torch.py). CUDA builds only.
if(LOOM_WITH_CUDA)
  add_executable(gpu_step_bench ${CMAKE_CURRENT_LIST_DIR}/gpu_step_bench.cpp)
  loom_target_defaults(gpu_step_bench)
  target_link_libraries(gpu_step_bench PRIVATE loom_models)
endif()
