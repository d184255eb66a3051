# tests/python: the Python references loom's tests compare with. gpt_reference.py checks
# itself (Hugging Face GPT2LMHeadModel against plain torch, finite differences) in the .venv
# that scripts/setup.sh makes; without that environment it is skipped, under CI it fails.
add_test(NAME gpt_reference_self_test
         COMMAND sh -c "if [ -x \"$1/.venv/bin/python\" ] && \"$1/.venv/bin/python\" -c 'import torch, transformers, h5py' 2>/dev/null; then exec \"$1/.venv/bin/python\" \"$1/tests/python/gpt_reference.py\" --self-test; fi; echo \"SKIPPED: $1/.venv lacks torch/transformers/h5py (run scripts/setup.sh)\"; [ -z \"$CI\" ] || [ \"$CI\" = false ] || [ \"$CI\" = 0 ] || exit 1; exit 77"
                 sh ${PROJECT_SOURCE_DIR})
set_tests_properties(gpt_reference_self_test PROPERTIES LABELS unit TIMEOUT 300
                     SKIP_RETURN_CODE 77 ENVIRONMENT "LOOM_TORCH_THREADS=2")

# bert_reference.py checks itself likewise: Hugging Face BertForPreTraining's float64
# gradients against finite differences, nn.Embedding(padding_idx)'s pad row, padded keys.
add_test(NAME bert_reference_self_test
         COMMAND sh -c "if [ -x \"$1/.venv/bin/python\" ] && \"$1/.venv/bin/python\" -c 'import torch, transformers, h5py' 2>/dev/null; then exec \"$1/.venv/bin/python\" \"$1/tests/python/bert_reference.py\" --self-test; fi; echo \"SKIPPED: $1/.venv lacks torch/transformers/h5py (run scripts/setup.sh)\"; [ -z \"$CI\" ] || [ \"$CI\" = false ] || [ \"$CI\" = 0 ] || exit 1; exit 77"
                 sh ${PROJECT_SOURCE_DIR})
set_tests_properties(bert_reference_self_test PROPERTIES LABELS unit TIMEOUT 300
                     SKIP_RETURN_CODE 77 ENVIRONMENT "LOOM_TORCH_THREADS=2")
