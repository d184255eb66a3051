# loom_cooccur_bench: vocab + co-occurrence on a corpus (see bench/cooccur.sh).
add_executable(loom_cooccur_bench ${CMAKE_CURRENT_LIST_DIR}/cooccur_bench.cpp)
loom_target_defaults(loom_cooccur_bench)
target_link_libraries(loom_cooccur_bench PRIVATE loom_io loom_models)
