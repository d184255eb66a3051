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
