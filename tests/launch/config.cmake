# Config: schema tables, TOML + --set loading, errors, round trip, --describe.
loom_add_test(test_config
  SOURCES ${LOOM_TEST_DIR}/test_config.cpp
  LIBS loom_launch)
target_compile_definitions(test_config PRIVATE LOOM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")

# The model registry: a kind defined only in the test trains through `loom train`'s pipeline.
loom_add_test(test_registry
  SOURCES ${LOOM_TEST_DIR}/test_registry.cpp
  LIBS loom_launch)

# GPT's Hugging Face export: the layout, and transformers' GPT2LMHeadModel loading it.
loom_add_test(test_gpt_export
  SOURCES ${LOOM_TEST_DIR}/test_gpt_export.cpp
  LIBS loom_launch
  TIMEOUT 600)
set_property(TEST test_gpt_export APPEND PROPERTY ENVIRONMENT
             "LOOM_PYTHON=${PROJECT_SOURCE_DIR}/.venv/bin/python"
             "LOOM_GPT_REFERENCE=${PROJECT_SOURCE_DIR}/tests/python/gpt_reference.py"
             "LOOM_HF_LOAD_GPT=${PROJECT_SOURCE_DIR}/tests/python/hf_load_gpt.py")

# BERT's Hugging Face export: a run's RUN_DIR/hf and `loom export` loaded by transformers'
# BertForPreTraining (logits) and BertTokenizerFast (ids) (tests/python/hf_load_bert.py).
loom_add_test(test_bert_export
  SOURCES ${LOOM_TEST_DIR}/test_bert_export.cpp
  LIBS loom_launch
  LABELS e2e TIMEOUT 600)
add_dependencies(test_bert_export loom)
set_property(TEST test_bert_export APPEND PROPERTY ENVIRONMENT
             "LOOM_PYTHON=${PROJECT_SOURCE_DIR}/.venv/bin/python"
             "LOOM_GPT_REFERENCE=${PROJECT_SOURCE_DIR}/tests/python/gpt_reference.py"
             "LOOM_HF_LOAD_BERT=${PROJECT_SOURCE_DIR}/tests/python/hf_load_bert.py")

# BERT-large: the config accepts its shape and loom's parameters (names, shapes, count)
# equal Hugging Face BertForPreTraining's, neither allocated (tests/python/hf_bert_layout.py
# on torch's meta device; BertNet::parameter_layout).
loom_add_test(test_bert_large
  SOURCES ${LOOM_TEST_DIR}/test_bert_large.cpp
  LIBS loom_launch nlohmann_json::nlohmann_json
  TIMEOUT 300)
set_property(TEST test_bert_large APPEND PROPERTY ENVIRONMENT
             "LOOM_PYTHON=${PROJECT_SOURCE_DIR}/.venv/bin/python"
             "LOOM_HF_BERT_LAYOUT=${PROJECT_SOURCE_DIR}/tests/python/hf_bert_layout.py")
