#!/usr/bin/env bash
# Checkpoint throughput vs a plain sequential write of the same bytes, in one run.
#   bench/checkpoint.sh BUILD_DIR [SIZES_MB...]      (default sizes: 100 1000)
# Files go to BUILD_DIR/bench-checkpoint (same disk as the build) and are deleted after.
# Env: LOOM_BENCH_NP (ranks, default 1), LOOM_BENCH_MODE (gathered|parallel|auto).
# Target: checkpoint write >= 0.8 x the plain write (dd ... conv=fsync).
set -euo pipefail
build=${1:?usage: bench/checkpoint.sh BUILD_DIR [SIZES_MB...]}
shift
sizes=("$@")
[[ ${#sizes[@]} -gt 0 ]] || sizes=(100 1000)
np=${LOOM_BENCH_NP:-1}
mode=${LOOM_BENCH_MODE:-gathered}
prog="$build/bench/bench_checkpoint"
[[ -x $prog ]] || { echo "build it first: ninja -C $build bench_checkpoint" >&2; exit 1; }
dir="$build/bench-checkpoint"
mkdir -p "$dir"
trap 'rm -rf "$dir"' EXIT
export HDF5_USE_FILE_LOCKING=FALSE OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
launch=()
[[ $np -gt 1 ]] && launch=(mpirun -np "$np" --oversubscribe --bind-to none)

for mb in "${sizes[@]}"; do
  # Plain write: the same bytes in 16 MiB blocks, fsync'd.
  count=$(( (mb * 1000000 + 16777215) / 16777216 ))
  t0=$(date +%s.%N)
  dd if=/dev/zero of="$dir/plain.bin" bs=16M count="$count" conv=fsync status=none
  t1=$(date +%s.%N)
  plain_bytes=$(stat -c %s "$dir/plain.bin")
  rm -f "$dir/plain.bin"
  plain=$(awk -v b="$plain_bytes" -v a="$t0" -v c="$t1" 'BEGIN { printf "%.1f", b / 1e6 / (c - a) }')
  out=$("${launch[@]}" "$prog" "$dir" "$mb" "$mode")
  echo "$out" | grep -v '^RESULT'
  write=$(echo "$out" | sed -n 's/^RESULT write_mbps=\([0-9.]*\) .*/\1/p')
  read=$(echo "$out" | sed -n 's/.*read_mbps=\([0-9.]*\)/\1/p')
  awk -v mb="$mb" -v p="$plain" -v w="$write" -v r="$read" 'BEGIN {
    printf "%5d MB: plain dd write %.0f MB/s | checkpoint write %.0f MB/s (ratio %.2f, target >= 0.80) | read %.0f MB/s\n",
           mb, p, w, w / p, r }'
done
