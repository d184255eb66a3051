# io/: BERT pre-training data - the sentence splitter and the sentence-pair examples with
# masking over memory-mapped token shards (Note [BERT examples]).
loom_add_test(test_sentence_split
  SOURCES ${LOOM_TEST_DIR}/test_sentence_split.cpp
  LIBS loom_io)

loom_add_test(test_bert_examples
  SOURCES ${LOOM_TEST_DIR}/test_bert_examples.cpp
  LIBS loom_io)

# Build time and memory of the instance table over a synthetic 26 M-token stream, and the
# cost of example(): run by hand (see the file's header), never by ctest.
add_executable(bert_examples_bench ${LOOM_TEST_DIR}/bert_examples_bench.cpp)
loom_target_defaults(bert_examples_bench)
target_link_libraries(bert_examples_bench PRIVATE loom_io)

# np 2 and 3: each rank builds the table from the stream in rank + 1 shard files; the ranks'
# slices of each global batch are the examples of one process.
loom_add_mpi_test(test_bert_examples_mpi
  SOURCES ${LOOM_TEST_DIR}/test_bert_examples_mpi.cpp
  LIBS loom_io
  NP 2 3)
