# Issue 21: loom as a new user meets it, each driven on the real `loom` binary as a
# subprocess - help, version and did-you-mean for subcommands; examples run from a copy of
# the repository without ../shared (all missing inputs in one message, nothing created);
# relative paths in a config; the corpus from standard input; `loom slurm`'s checks and the
# job script's binary check; torchrun named (label: e2e, a few seconds in all).
loom_add_test(test_e2e_cli
  SOURCES ${LOOM_TEST_DIR}/cli_test.cpp
  LABELS e2e TIMEOUT 300)
target_compile_definitions(test_e2e_cli PRIVATE LOOM_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
                           LOOM_BUILD_DIR="${PROJECT_BINARY_DIR}" LOOM_CMAKE="${CMAKE_COMMAND}")
add_dependencies(test_e2e_cli loom)
