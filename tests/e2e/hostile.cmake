# Defects found by using loom as a hostile user would (issue 20), each tried on the real
# `loom` binary: truncated corpora, non-finite settings, damaged checkpoints, signals to
# mpirun, reused run directories, ... (label: e2e).
loom_add_test(test_e2e_hostile
  SOURCES ${LOOM_TEST_DIR}/hostile_test.cpp
  LIBS nlohmann_json::nlohmann_json ZLIB::ZLIB HDF5::HDF5 MPI::MPI_C
  LABELS e2e TIMEOUT 900)
target_compile_definitions(test_e2e_hostile PRIVATE LOOM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(test_e2e_hostile loom)
add_dependencies(test_e2e_hostile ckpt_tool)   # defined in tests/io/io.cmake
set_property(TEST test_e2e_hostile APPEND PROPERTY ENVIRONMENT "LOOM_CKPT_TOOL=$<TARGET_FILE:ckpt_tool>")
# Issue 20's failure modes reached by a hostile user's inputs, on the real binary: a 100 MB
# line and a 50 MB token within a stated memory bound per rank (np 1 and 2), the status
# server probed while every model trains at np 1 and 2, the lines of two ranks in one
# stream (label: e2e; ~3 minutes on a loaded 2-core machine).
loom_add_test(test_e2e_hostile_inputs
  SOURCES ${LOOM_TEST_DIR}/hostile_inputs_test.cpp
  LIBS nlohmann_json::nlohmann_json
  LABELS e2e TIMEOUT 600)
target_compile_definitions(test_e2e_hostile_inputs PRIVATE LOOM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(test_e2e_hostile_inputs loom)
