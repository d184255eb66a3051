# bert_dump_examples: loom's BERT examples (io/bert_examples.h) as .npy files for
# bench/bert.sh, so that Hugging Face trains on exactly loom's data (bench/bert_learn_torch.py).
add_executable(bert_dump_examples ${CMAKE_CURRENT_LIST_DIR}/bert_dump_examples.cpp)
loom_target_defaults(bert_dump_examples)
target_link_libraries(bert_dump_examples PRIVATE loom_io OpenMP::OpenMP_CXX)
