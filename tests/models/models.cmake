# models/: GloVe math, word vector files and their evaluation (unit), GloVe training end to
# end at world sizes 1, 2 and 3 (mpi).
loom_add_test(test_glove_math
  SOURCES ${LOOM_TEST_DIR}/test_glove_math.cpp
  LIBS loom_models)

loom_add_test(test_embedding_io
  SOURCES ${LOOM_TEST_DIR}/test_embedding_io.cpp
  LIBS loom_models)

loom_add_mpi_test(test_glove_train
  SOURCES ${LOOM_TEST_DIR}/test_glove_train.cpp
  LIBS loom_models
  NP 1 2 3
  TIMEOUT 600)

# GPT (models/gpt): the network's gradient against finite differences in double, float32
# against float64, and against Hugging Face's GPT2LMHeadModel in PyTorch float64.
loom_add_test(test_gpt_net
  SOURCES ${LOOM_TEST_DIR}/test_gpt_net.cpp
  LIBS loom_models
  TIMEOUT 600)
set_property(TEST test_gpt_net APPEND PROPERTY ENVIRONMENT
             "LOOM_PYTHON=${PROJECT_SOURCE_DIR}/.venv/bin/python"
             "LOOM_GPT_REFERENCE=${PROJECT_SOURCE_DIR}/tests/python/gpt_reference.py")

loom_add_test(test_gpt_model
  SOURCES ${LOOM_TEST_DIR}/test_gpt_model.cpp
  LIBS loom_models)

loom_add_test(test_bert_model
  SOURCES ${LOOM_TEST_DIR}/test_bert_model.cpp
  LIBS loom_models)

# BERT (models/bert): the network's gradient against finite differences in double, float32
# against float64, gathered MLM rows against all positions, and against Hugging Face's
# BertForPreTraining in PyTorch float64.
loom_add_test(test_bert_net
  SOURCES ${LOOM_TEST_DIR}/test_bert_net.cpp
  LIBS loom_models
  TIMEOUT 600)
set_property(TEST test_bert_net APPEND PROPERTY ENVIRONMENT
             "LOOM_PYTHON=${PROJECT_SOURCE_DIR}/.venv/bin/python"
             "LOOM_BERT_REFERENCE=${PROJECT_SOURCE_DIR}/tests/python/bert_reference.py")
