#!/usr/bin/env bash
# On a lent GPU machine (CUDA 13, cuBLAS, NCCL, PyTorch; no MPI, no HDF5), from the
# repository root with the bundle of bench/gpu_bundle.sh beside it: runs the gpu-labelled
# tests that need no MPI runtime (every kernel against the CPU, the optimizers, a whole
# GPT and BERT step against the CPU's in fp32 and bf16), then bench/gpu.sh. Logs go to
# $OUT when it is set (the device tool brings that folder back), else to ./gpu-logs.
#
# Usage: bench/gpu_lent.sh [BUNDLE_DIR]          (default gpu-bundle)
#   SKIP_TESTS=1 / SKIP_BENCH=1                   one half only
#   the bench's own variables (CASES, TOOLS, STEPS, WARMUP, PRECISION, ...) pass through
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
bundle=${1:-gpu-bundle}
logs=${OUT:-$here/gpu-logs}
cd "$here"
mkdir -p "$logs"
nvidia-smi -L || { echo "bench/gpu_lent.sh: no GPU here" >&2; exit 2; }
[ -f "$bundle/bundle.tar.xz" ] || { echo "bench/gpu_lent.sh: no $bundle/bundle.tar.xz (make it with bench/gpu_bundle.sh)" >&2; exit 2; }
root=$(mktemp -d)
tar -xJf "$bundle/bundle.tar.xz" -C "$root"
# The CUDA libraries the binaries link (cudart, cuBLAS, NCCL): the toolkit's or PyTorch's
# pip packages, wherever this machine keeps them.
cuda_dirs=""
for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13 libnccl.so.2; do
  f=$(find /usr/local /opt /usr/lib -name "$lib*" 2>/dev/null | head -1)
  [ -n "$f" ] && cuda_dirs="$cuda_dirs:$(dirname "$f")"
done
libs="$root/lib$cuda_dirs"
echo "libraries: $libs"
rc=0
if [ -z "${SKIP_TESTS:-}" ]; then
  for t in test_kernels_gpu test_gpu_optimizer test_model_step_gpu; do
    echo "== $t"
    LD_LIBRARY_PATH="$libs" "$root/bin/$t" 2>&1 | tee "$logs/$t.log" | grep -E "^\[  (PASSED|FAILED|SKIPPED) |Failure|error" | head -40
    [ "${PIPESTATUS[0]}" -eq 0 ] || { echo "FAILED: $t (log $logs/$t.log)"; rc=1; }
  done
fi
if [ -z "${SKIP_BENCH:-}" ]; then
  LOOM_GPU_LIBS="$libs" bench/gpu.sh "$root/bin" 2>&1 | tee "$logs/bench.log" || rc=1
fi
rm -rf "$root"
exit $rc
