# Corpus reading, vocabulary and co-occurrence (io/corpus_shard, io/vocab, io/cooccur).
loom_add_test(test_corpus
  SOURCES ${LOOM_TEST_DIR}/corpus_test.cpp
  LIBS loom_io ZLIB::ZLIB LibLZMA::LibLZMA)
loom_add_mpi_test(test_corpus_mpi
  SOURCES ${LOOM_TEST_DIR}/corpus_mpi_test.cpp
  LIBS loom_io loom_models
  NP 1 2 3)
