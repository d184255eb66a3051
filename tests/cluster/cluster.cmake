# Cluster tests (label: cluster): a private SLURM cluster and simulated hosts (network
# namespaces), both started and stopped by the tests themselves (scripts in this folder).
# They train GloVe and word2vec with the real `loom` binary ($LOOM_BINARY, set by
# loom_add_test) on configs derived from examples/glove.toml and word2vec.toml, and submit
# examples/slurm/*-cpu.sbatch as they are or as `loom slurm` writes them (signals, the time
# limit, scancel, preemption). They need root, Debian's slurm-wlm, munge and iproute2; they
# skip with the reason otherwise (fail under CI=true). RUN_SERIAL: each trains several 2-3
# rank jobs on the CI's 2 cores.
foreach(t slurm hosts)
  loom_add_test(test_cluster_${t}
    SOURCES ${LOOM_TEST_DIR}/test_${t}.cpp
    LIBS loom_io loom_core
    LABELS cluster TIMEOUT 900)
  target_compile_definitions(test_cluster_${t} PRIVATE LOOM_CLUSTER_DIR="${LOOM_TEST_DIR}"
                             LOOM_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  add_dependencies(test_cluster_${t} loom)
  set_property(TEST test_cluster_${t} PROPERTY RUN_SERIAL TRUE)
endforeach()
