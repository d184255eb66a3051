# What a user watching a run sees (label: e2e): the `loom` binary under a pseudo-terminal
# (forkpty), alone and under mpirun, and its status server over real HTTP on 127.0.0.1
# while the data stages run.
loom_add_test(test_e2e_terminal
  SOURCES ${LOOM_TEST_DIR}/terminal_test.cpp
  LIBS nlohmann_json::nlohmann_json util
  LABELS e2e TIMEOUT 600)
target_compile_definitions(test_e2e_terminal PRIVATE LOOM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(test_e2e_terminal loom)
