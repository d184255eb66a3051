# io/: HDF5 wrapper, checksums and checkpoints. Real files, real processes.
loom_add_test(test_h5
  SOURCES ${LOOM_TEST_DIR}/test_h5.cpp ${LOOM_TEST_DIR}/test_checksum.cpp
  LIBS loom_io ZLIB::ZLIB)

add_executable(ckpt_tool ${LOOM_TEST_DIR}/ckpt_tool.cpp)
loom_target_defaults(ckpt_tool)
target_link_libraries(ckpt_tool PRIVATE loom_io)

# Damage, resume, retention, disk full, h5py and h5dump: a singleton world suffices.
loom_add_mpi_test(test_checkpoint_files
  SOURCES ${LOOM_TEST_DIR}/test_checkpoint_files.cpp ${LOOM_TEST_DIR}/test_checkpoint_external.cpp
  LIBS loom_io HDF5::HDF5 MPI::MPI_C
  NP 1)
add_dependencies(test_checkpoint_files ckpt_tool)
set_property(TEST test_checkpoint_files_singleton APPEND PROPERTY ENVIRONMENT
             "LOOM_CKPT_TOOL=$<TARGET_FILE:ckpt_tool>")

# The collective: singleton, np 2, np 3 (both write modes).
loom_add_mpi_test(test_checkpoint_mpi
  SOURCES ${LOOM_TEST_DIR}/test_checkpoint_mpi.cpp
  LIBS loom_io
  NP 1 2 3)

# Checkpoint data through the host staging buffer, forced on the CPU with tiny pieces.
loom_add_mpi_test(test_checkpoint_staging
  SOURCES ${LOOM_TEST_DIR}/test_checkpoint_staging.cpp
  LIBS loom_io
  NP 1 2)

# Parameters and optimizer slots on a GPU (label gpu): skips, saying why, without one.
loom_add_mpi_test(test_checkpoint_gpu
  SOURCES ${LOOM_TEST_DIR}/test_checkpoint_gpu.cpp
  LIBS loom_io
  NP 1 2
  LABELS gpu)
# ctest shows it as skipped (not passed) where gtest skipped it for want of a GPU.
set_tests_properties(test_checkpoint_gpu_singleton test_checkpoint_gpu_np2 PROPERTIES
                     SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]")
