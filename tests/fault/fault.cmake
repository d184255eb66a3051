# Fault tests of dist/: a rank that stalls, is stopped or is killed, and a launcher that
# announces more ranks than MPI sees. comm_loop is the program under test; test_comm_faults
# launches it with mpirun and checks how the job ends (label: fault).
add_executable(comm_loop ${LOOM_TEST_DIR}/comm_loop.cpp)
loom_target_defaults(comm_loop)
target_link_libraries(comm_loop PRIVATE loom_dist)

loom_add_test(test_comm_faults
  SOURCES ${LOOM_TEST_DIR}/test_comm_faults.cpp
  LIBS loom_core
  LABELS fault
  TIMEOUT 400)
target_compile_definitions(test_comm_faults PRIVATE LOOM_COMM_LOOP="$<TARGET_FILE:comm_loop>")
add_dependencies(test_comm_faults comm_loop)
