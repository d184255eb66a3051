# vocab.h5 (Note [vocab.h5] in io/vocab.h): its layout, its checksums (the checkpoints'
# convention, checked independently with h5py and zlib), damage, and old files without them.
loom_add_test(test_vocab_h5
  SOURCES ${LOOM_TEST_DIR}/test_vocab_h5.cpp
  LIBS loom_io)
