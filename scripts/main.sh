#!/usr/bin/env bash
# loom's main job: sets loom up (packages, configure, build), then trains GloVe on 2 ranks.
#   scripts/main.sh                  the synthetic planted-relation corpus that loom
#                                    generates (examples/glove.toml): prints the analogy
#                                    accuracy every 5 epochs, the per-relation table and a
#                                    few `a : b :: c : ?` answers at the end
#   scripts/main.sh CORPUS...        your corpus (files, directories, globs; .gz/.xz too)
#                                    with the recommended wiki17m recipe
#                                    (examples/glove-wiki17m-d300.toml: D 300, 15 iterations)
#   scripts/main.sh --np N ...       another number of ranks
# Extra loom options go after `--`, e.g. scripts/main.sh -- --set glove.epochs=50
# The run continues its run directory (--resume auto): a second call resumes the finished
# run (nothing left to train, the results again); a new run needs another run.dir
# (-- --set run.dir=runs/other) or the old directory removed.
set -euo pipefail
caller=$PWD
cd "$(dirname "$0")/.."
np=2
if [[ "${1:-}" == "--np" ]]; then np=$2; shift 2; fi
corpus=()
while [[ $# -gt 0 && "$1" != "--" ]]; do corpus+=("$1"); shift; done
[[ "${1:-}" == "--" ]] && shift
scripts/setup.sh --no-tests
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
loom=("${LOOM_BUILD_DIR:-build}/loom")
# `loom mpirun`: Ctrl-C or SIGTERM stops the ranks with a checkpoint and exits 130 / 143
# (a bare mpirun exits 1; README "Stopping"); the next call resumes.
mpirun=("${loom[@]}" mpirun -np "$np" --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 --)
if [[ ${#corpus[@]} -eq 0 ]]; then
  exec "${mpirun[@]}" train examples/glove.toml --resume auto "$@"
fi
paths=""
for c in "${corpus[@]}"; do
  [[ "$c" == /* ]] || c="$caller/$c"   # paths are the caller's, not the repository's
  [[ -e "$c" ]] || { echo "main.sh: corpus file $c does not exist" >&2; exit 1; }
  paths+="${paths:+,}\"$c\""
done
sets=(--set "corpus.paths=[$paths]" --set run.name=glove-corpus --set eval.every_epochs=0)
# The analogy and similarity files of ../shared/data, where they exist.
[[ -f ../shared/data/questions-words.txt ]] || sets+=(--set eval.analogy=)
[[ -f ../shared/data/wordsim353.tsv ]] || sets+=(--set eval.similarity=)
exec "${mpirun[@]}" train examples/glove-wiki17m-d300.toml --resume auto "${sets[@]}" "$@"
