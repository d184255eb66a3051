#!/usr/bin/env bash
# Checkpoint throughput vs a plain sequential write of the same bytes, in one run.
#   bench/checkpoint.sh BUILD_DIR [SIZES_MB...]      (default sizes: 100 1000)
# Files go to BUILD_DIR/bench-checkpoint (same disk as the build) and are deleted after.
# Env: LOOM_BENCH_NP (ranks, default 1), LOOM_BENCH_MODE (gathered|parallel|auto),
# LOOM_BENCH_REPS (default 3). The plain write is `dd ... conv=fsync` of the same bytes
# (written raw to /dev/shm first); plain and checkpoint writes alternate, REPS times, with a
# pause between, and the medians are compared: a virtual disk's throughput varies by +-30 %
# from one write to the next, so one pair of writes says little.
# Target: checkpoint write >= 0.8 x the plain write.
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
reps=${LOOM_BENCH_REPS:-3}
src=/dev/shm/loom-bench-checkpoint.$$
trap 'rm -rf "$dir" "$src"' EXIT
export HDF5_USE_FILE_LOCKING=FALSE OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
launch=()
[[ $np -gt 1 ]] && launch=(mpirun -np "$np" --oversubscribe --bind-to none)

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

for mb in "${sizes[@]}"; do
  "$prog" --raw "$src" "$mb"
  plains=() writes=() reads=()
  for ((rep = 1; rep <= reps; ++rep)); do
    t0=$(date +%s.%N)
    dd if="$src" of="$dir/plain.bin" bs=16M conv=fsync status=none
    t1=$(date +%s.%N)
    plain_bytes=$(stat -c %s "$dir/plain.bin")
    rm -f "$dir/plain.bin"
    plains+=("$(awk -v b="$plain_bytes" -v a="$t0" -v c="$t1" 'BEGIN { printf "%.1f", b / 1e6 / (c - a) }')")
    sleep 2
    out=$("${launch[@]}" "$prog" "$dir" "$mb" "$mode")
    echo "$out" | grep -v '^RESULT'
    writes+=("$(echo "$out" | sed -n 's/^RESULT write_mbps=\([0-9.]*\) .*/\1/p')")
    reads+=("$(echo "$out" | sed -n 's/.*read_mbps=\([0-9.]*\)/\1/p')")
    echo "  rep $rep: plain dd write ${plains[-1]} MB/s, checkpoint write ${writes[-1]} MB/s"
    sleep 2
  done
  rm -f "$src"
  p=$(printf '%s\n' "${plains[@]}" | median)
  w=$(printf '%s\n' "${writes[@]}" | median)
  r=$(printf '%s\n' "${reads[@]}" | median)
  awk -v mb="$mb" -v p="$p" -v w="$w" -v r="$r" -v n="$reps" -v np="$np" -v m="$mode" 'BEGIN {
    printf "%5d MB, %d rank(s), %s, median of %d: plain dd write %.0f MB/s | checkpoint write %.0f MB/s (ratio %.2f, target >= 0.80) | read %.0f MB/s\n",
           mb, np, m, n, p, w, w / p, r }'
done
