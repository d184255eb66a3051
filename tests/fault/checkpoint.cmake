add_library(loom_regression_model STATIC ${PROJECT_SOURCE_DIR}/tests/support/regression_model.cpp)
loom_target_defaults(loom_regression_model)
target_link_libraries(loom_regression_model PUBLIC loom_models loom_launch)

add_executable(train_tool ${LOOM_TEST_DIR}/train_tool.cpp)
loom_target_defaults(train_tool)
target_link_libraries(train_tool PRIVATE loom_regression_model)

loom_add_test(test_fault_resume
  SOURCES ${LOOM_TEST_DIR}/test_resume.cpp
  LIBS loom_io loom_core
  LABELS fault TIMEOUT 900)
add_dependencies(test_fault_resume train_tool)
set_property(TEST test_fault_resume APPEND PROPERTY ENVIRONMENT "LOOM_TRAIN_TOOL=$<TARGET_FILE:train_tool>")
