# bench_allreduce: loom's MPI allreduce vs a plain MPI_Allreduce loop (run bench/allreduce.sh).
add_executable(bench_allreduce ${CMAKE_CURRENT_SOURCE_DIR}/bench_allreduce.cpp)
loom_target_defaults(bench_allreduce)
target_link_libraries(bench_allreduce PRIVATE loom_dist MPI::MPI_C)
