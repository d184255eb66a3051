#!/usr/bin/env bash
# Runs bench_allreduce at 2 and 3 ranks, 4 KiB .. 256 MiB (powers of 4), and prints one
# table per world size with loom/plain per size. Build first (a Release build measures
# what users run):
#   cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release && ninja -C build-bench bench_allreduce
#   bench/allreduce.sh [build-dir] [extra bench_allreduce flags...]
# With fewer cores than ranks the numbers are noisy (ranks are oversubscribed).
set -euo pipefail
build_dir="${1:-build-bench}"
shift || true
bin="$build_dir/bench/bench_allreduce"
if [[ ! -x "$bin" ]]; then
  echo "allreduce.sh: $bin not found; build the bench_allreduce target in $build_dir first" >&2
  exit 2
fi
export OMPI_ALLOW_RUN_AS_ROOT="${OMPI_ALLOW_RUN_AS_ROOT:-1}"
export OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="${OMPI_ALLOW_RUN_AS_ROOT_CONFIRM:-1}"
echo "# loom allreduce vs plain MPI_Allreduce, f32 sum, fastest of 7 reps; $(nproc) cores"
for np in 2 3; do
  echo "## np=$np"
  mpirun -np "$np" --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 \
    "$bin" --min-bytes 4096 --max-bytes 268435456 --factor 4 "$@"
done
