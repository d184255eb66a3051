# GloVe through `loom train` at 1 and 2 ranks: twenty kills of a rank (kill_plan.h), resume with
# --resume auto, compare
# bit for bit with an uninterrupted run (label: fault).
loom_add_test(test_fault_glove_resume
  SOURCES ${LOOM_TEST_DIR}/glove_resume_test.cpp ${LOOM_TEST_DIR}/kill_plan.cpp ${LOOM_TEST_DIR}/fault_models.cpp
  LIBS loom_io loom_core nlohmann_json::nlohmann_json
  LABELS fault TIMEOUT 900)
target_compile_definitions(test_fault_glove_resume PRIVATE LOOM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(test_fault_glove_resume loom)
