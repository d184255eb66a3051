# Every kind of damage to the newest checkpoints (a flipped byte in a named dataset, a cut
# file, a deleted dataset, a parameter rewritten in another shape with its checksum and
# listing intact, a wrong format or format_version, an empty file, `latest` naming
# a file that is gone, all of them damaged) on the real `loom train` of GloVe, word2vec, GPT
# and BERT at 1 and 2 ranks, each resumed with --resume auto and compared bit for bit with
# an uninterrupted run; and a SIGSTOPped rank of a 2-rank `loom train` under a 3 s
# comm.timeout_s (label: fault).
loom_add_test(test_fault_damage_matrix
  SOURCES ${LOOM_TEST_DIR}/damage_matrix_test.cpp ${LOOM_TEST_DIR}/fault_models.cpp
  LIBS loom_io loom_core nlohmann_json::nlohmann_json HDF5::HDF5 MPI::MPI_C
  LABELS fault TIMEOUT 600)
target_compile_definitions(test_fault_damage_matrix PRIVATE LOOM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(test_fault_damage_matrix loom)
