# `loom mpirun` (launch/cli/cli_mpirun.cpp): real signals to the launcher of a real
# `mpirun -np 2` job of `loom train` (GloVe, word2vec): the exit status a scheduler sees, the
# stop checkpoint, a bit-for-bit resume through the launcher, nothing left running; the hard
# stop, a rank's error, mpirun killed (label: fault).
loom_add_test(test_fault_launcher
  SOURCES ${LOOM_TEST_DIR}/launcher_test.cpp ${LOOM_TEST_DIR}/fault_models.cpp
  LIBS loom_io loom_core nlohmann_json::nlohmann_json
  LABELS fault TIMEOUT 600)
target_compile_definitions(test_fault_launcher PRIVATE LOOM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(test_fault_launcher loom)
