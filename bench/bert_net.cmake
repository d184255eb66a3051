# bert_net_bench: forward + backward tokens/s of BertNet alone (bench/bert_net_torch.py is
# Hugging Face BertForPreTraining's side at the same shapes).
add_executable(bert_net_bench ${CMAKE_CURRENT_LIST_DIR}/bert_net_bench.cpp)
loom_target_defaults(bert_net_bench)
target_link_libraries(bert_net_bench PRIVATE loom_models)
