# Forward + backward time of each transformer kernel family at GPT shapes (CPU reference).
add_executable(bench_kernels ${CMAKE_CURRENT_SOURCE_DIR}/bench_kernels.cpp)
loom_target_defaults(bench_kernels)
target_link_libraries(bench_kernels PRIVATE loom_core)
