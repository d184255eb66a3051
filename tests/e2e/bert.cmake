# BERT through the `loom` binary on a generated multi-document corpus and a WordPiece
# vocabulary learnt in the test: np 1, 2, 3 agree on the loss curves and the parameters
# (batch 7 at np 2 too); the held-out MLM loss falls below ln(V), `loom eval` prints
# eval.json's figures, LAMB trains; bad inputs refused naming their cause (label: e2e).
loom_add_test(test_e2e_bert
  SOURCES ${LOOM_TEST_DIR}/bert_test.cpp
  LIBS loom_io loom_core nlohmann_json::nlohmann_json
  LABELS e2e TIMEOUT 600)
add_dependencies(test_e2e_bert loom)
