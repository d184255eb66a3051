# BERT through `loom train` at 1 and 2 ranks: twenty kills of a rank (six aimed at the points of
# a checkpoint write, one at the resume's load, thirteen at random instants), resume with --resume auto,
# compare bit for bit with an uninterrupted run (parameters, optimizer slots, per-step losses,
# held-out curve); resume a 2-rank run at 1 and 3 ranks from the same global step; LAMB at 2 ranks
# killed three times and resumed bit for bit, its curve equal to 1 rank's (label: fault).
loom_add_test(test_fault_bert_resume
  SOURCES ${LOOM_TEST_DIR}/bert_resume_test.cpp ${LOOM_TEST_DIR}/kill_plan.cpp ${LOOM_TEST_DIR}/fault_models.cpp
  LIBS loom_io loom_core nlohmann_json::nlohmann_json
  LABELS fault TIMEOUT 900)
target_compile_definitions(test_fault_bert_resume PRIVATE LOOM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
add_dependencies(test_fault_bert_resume loom)
