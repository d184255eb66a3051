# io/: BERT pre-training data - the sentence splitter and the sentence-pair examples with
# masking over memory-mapped token shards (Note [BERT examples]).
loom_add_test(test_sentence_split
  SOURCES ${LOOM_TEST_DIR}/test_sentence_split.cpp
  LIBS loom_io)

loom_add_test(test_bert_examples
  SOURCES ${LOOM_TEST_DIR}/test_bert_examples.cpp
  LIBS loom_io)
