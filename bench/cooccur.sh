#!/usr/bin/env bash
# Vocab + co-occurrence on wiki17m (window 15, min_count 5), at 2 ranks x 1 thread.
# Usage: bench/cooccur.sh BUILD_DIR [WORK_DIR]   (BUILD_DIR configured with Release)
set -euo pipefail
build=${1:?build dir}
work=${2:-/tmp/loom-cooccur-bench}
here=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$work/out"
[ -f "$work/wiki17m.txt" ] || xz -dkc "$here/../shared/data/wiki17m.txt.xz" > "$work/wiki17m.txt"
ninja -C "$build" -j2 loom_cooccur_bench
for np in 1 2; do
  /usr/bin/time -v mpirun -np $np --oversubscribe --bind-to none "$build/bench/loom_cooccur_bench" \
    "$work/wiki17m.txt" "$work/out" 15 5 4.0 2>&1 | grep -E "rank|Elapsed|Maximum resident|cooccur\]|vocab\]"
done
