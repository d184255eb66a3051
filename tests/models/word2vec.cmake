# models/word2vec: the math (unit), and training on the planted corpus at world sizes 1, 2
# and 3 (mpi): skip-gram and CBOW with negative sampling and hierarchical softmax,
# determinism, replica equality and exact resume.
loom_add_test(test_word2vec_math
  SOURCES ${LOOM_TEST_DIR}/test_word2vec_math.cpp
  LIBS loom_models)

loom_add_mpi_test(test_word2vec_train
  SOURCES ${LOOM_TEST_DIR}/test_word2vec_train.cpp
  LIBS loom_models
  NP 1 2 3
  TIMEOUT 600)
