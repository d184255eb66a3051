#!/usr/bin/env bash
# loom's main job: sets loom up (packages, configure, build), then runs it on 2 ranks.
# Until the first model lands this is the collective self-test: 2 ranks run every
# collective on checked data, with progress, metrics and the run environment printed.
#
#   scripts/main.sh [--np N] [loom selftest arguments...]
set -euo pipefail
cd "$(dirname "$0")/.."
np=2
if [[ "${1:-}" == "--np" ]]; then np=$2; shift 2; fi
scripts/setup.sh --no-tests
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
exec mpirun -np "$np" --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 \
  "${LOOM_BUILD_DIR:-build}/loom" selftest examples/selftest.toml "$@"
