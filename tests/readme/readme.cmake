# The README's fenced commands, run as a user pastes them (Note [README commands under
# test] in tests/readme/readme_test.py): every ```sh / ```python fence is marked run, data
# (run when ../shared/data exists) or skip with a reason; an unmarked one fails.
add_test(NAME readme_commands
         COMMAND python3 ${LOOM_TEST_DIR}/readme_test.py ${PROJECT_SOURCE_DIR} $<TARGET_FILE:loom>)
# A command not run for a missing environment (no python3 with numpy, gensim and h5py)
# prints the marker of Note [Skips that fail under CI]: skipped, not passed (under CI: failed).
set_tests_properties(readme_commands PROPERTIES LABELS e2e TIMEOUT 600
                     SKIP_REGULAR_EXPRESSION "LOOM-ENVIRONMENT-SKIP")   # tests/support/test_support.h
