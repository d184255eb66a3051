#!/usr/bin/env bash
# Packs what the lent GPU machines need to run loom's GPU tests and bench/gpu.sh, built on
# this (build) machine: they have CUDA 13, cuBLAS, NCCL, PyTorch and CMake, but no MPI or
# HDF5 packages, so loom cannot be built there, and its binaries need those libraries.
#
# Usage: bench/gpu_bundle.sh [BUILD_DIR] [OUT_DIR]
#   BUILD_DIR  default build-gpu: configured here when missing, for portable x86-64
#              (-DLOOM_NATIVE=OFF: -march=native code from this CPU could stop with an
#              illegal instruction on the GPU machine's), CUDA sm_90 (H100/H200)
#   OUT_DIR    default gpu-bundle (add it to .git/info/exclude; carry it to the machine)
# OUT_DIR/bundle.tar.xz holds bin/ (gpu_step_bench and the gpu-labelled test binaries that
# need no MPI runtime, stripped) and lib/ (every shared library they load but the C and C++
# runtimes, the CUDA driver and the CUDA toolkit's libraries: the machine has newer or
# matching ones), xz-compressed (~14 MB) to stay under the device tool's 64 MiB carry
# limit. On the machine, from the repository root: bench/gpu_lent.sh (the tests, then
# bench/gpu.sh).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build-gpu}
out=${2:-gpu-bundle}
cd "$here"
targets="gpu_step_bench test_model_step_gpu test_kernels_gpu test_gpu_optimizer"
if [ ! -f "$build/CMakeCache.txt" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOOM_CUDA=ON -DLOOM_NATIVE=OFF \
        -DCMAKE_CUDA_ARCHITECTURES=90
fi
ninja -C "$build" -j"${JOBS:-2}" $targets

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin" "$stage/lib" "$out"
for t in $targets; do
  f=$(find "$build" -name "$t" -type f -perm -u+x | head -1)
  [ -n "$f" ] || { echo "bench/gpu_bundle.sh: $t not built in $build" >&2; exit 1; }
  cp "$f" "$stage/bin/"
  strip "$stage/bin/$t"
done
# Every library the binaries load, minus the C runtime (glibc's), the CUDA driver and
# what the CUDA toolkit ships (cudart, cuBLAS, NCCL: the machine's own match CUDA 13).
for b in "$stage"/bin/*; do
  ldd "$b" | awk '/=> \//{print $3}'
done | sort -u | while read -r lib; do
  case $(basename "$lib") in
    libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libcuda.so*) continue ;;
    libstdc++.so*|libgcc_s.so*) continue ;;   # the machine's are newer (its PyTorch needs them): keep those
  esac
  case $lib in
    /usr/local/cuda*|*/nvidia/*) continue ;;
  esac
  cp -L "$lib" "$stage/lib/"
done
tar -C "$stage" -cJf "$out/bundle.tar.xz" bin lib
ls -l "$out/bundle.tar.xz"
echo "bin: $(ls "$stage/bin" | tr '\n' ' ')"
echo "lib: $(ls "$stage/lib" | tr '\n' ' ')"
