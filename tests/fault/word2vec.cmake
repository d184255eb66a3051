# word2vec through `loom train` at 1 and 2 ranks: kill -9 a rank, resume with --resume auto,
# compare bit for bit with an uninterrupted run (label: fault).
loom_add_test(test_fault_word2vec_resume
  SOURCES ${LOOM_TEST_DIR}/word2vec_resume_test.cpp
  LIBS loom_io loom_core
  LABELS fault TIMEOUT 600)
target_compile_definitions(test_fault_word2vec_resume PRIVATE LOOM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(test_fault_word2vec_resume loom)
