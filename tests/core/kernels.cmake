# Layer kernels (core/kernels.h) on the CPU reference: one source per family.
# (CUDA kernels are compared with the CPU reference in tests/gpu/.)
loom_add_test(test_kernels
  SOURCES ${LOOM_TEST_DIR}/test_kernels_linear.cpp ${LOOM_TEST_DIR}/test_kernels_embedding.cpp
          ${LOOM_TEST_DIR}/test_kernels_layernorm.cpp ${LOOM_TEST_DIR}/test_kernels_gelu.cpp
          ${LOOM_TEST_DIR}/test_kernels_attention.cpp
          ${LOOM_TEST_DIR}/test_kernels_softmax_cross_entropy.cpp
          ${LOOM_TEST_DIR}/test_kernels_tanh.cpp ${LOOM_TEST_DIR}/test_kernels_gather_rows.cpp
  LIBS loom_core)
