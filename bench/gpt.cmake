# sgemm_peak: OpenBLAS sgemm GFLOP/s at GPT shapes, the ceiling bench/gpt.sh compares with.
add_executable(sgemm_peak ${CMAKE_CURRENT_LIST_DIR}/sgemm_peak.cpp)
loom_target_defaults(sgemm_peak)
target_link_libraries(sgemm_peak PRIVATE BLAS::BLAS)
