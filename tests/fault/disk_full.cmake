# A disk that fills up during a checkpoint write (a tmpfs in a private mount namespace as
# checkpoint.dir) on the real `loom train` of GloVe, word2vec, GPT and BERT at 1 and 2
# ranks: exit status 1 with a message naming the full disk, the file and what to do, the
# earlier checkpoints intact, and a resume elsewhere bit for bit equal to an uninterrupted
# run (label: fault).
loom_add_test(test_fault_disk_full
  SOURCES ${LOOM_TEST_DIR}/disk_full_test.cpp ${LOOM_TEST_DIR}/fault_models.cpp
  LIBS loom_io loom_core nlohmann_json::nlohmann_json HDF5::HDF5 MPI::MPI_C
  LABELS fault TIMEOUT 600)
target_compile_definitions(test_fault_disk_full PRIVATE LOOM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(test_fault_disk_full loom)
