# Checkpoint write/read throughput against a plain sequential write (bench/checkpoint.sh).
add_executable(bench_checkpoint ${CMAKE_CURRENT_SOURCE_DIR}/bench_checkpoint.cpp)
loom_target_defaults(bench_checkpoint)
target_link_libraries(bench_checkpoint PRIVATE loom_io)
