#!/usr/bin/env bash
# GloVe's whole pipeline (vocab -> co-occurrence -> training -> export -> evaluation) on
# wiki17m with issue 6's settings (examples/glove-wiki17m.toml: D 100, window 15,
# min_count 5, x_max 10, 15 iterations), at 2 ranks x 1 thread and 1 rank x 2 threads.
# Prints each phase's time, the final loss, the analogy accuracy (total / semantic /
# syntactic, answered counts) on questions-words.txt, WordSim-353 rho, updates/s per core,
# peak RSS per rank and the ratios to GloVe's reference tools on this machine class
# (987 s whole pipeline, 33.4 % analogy total, rho 0.466).
#
# Usage: bench/glove.sh [BUILD_DIR] [WORK_DIR]      (BUILD_DIR configured with Release)
#   EPOCHS=5 bench/glove.sh ...        fewer iterations (say so when reporting)
#   LAYOUTS="2x1" bench/glove.sh ...   only some layouts (RANKSxTHREADS, space separated)
#   BENCH_SET="--set glove.step_nnz=2097152" bench/glove.sh ...   extra loom overrides
#   BENCH_CONFIG=examples/glove-wiki17m-d300.toml bench/glove.sh ...   another recipe
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
work=${2:-${TMPDIR:-/tmp}/loom-glove-bench}
epochs=${EPOCHS:-15}
config=${BENCH_CONFIG:-examples/glove-wiki17m.toml}
layouts=${LAYOUTS:-2x1 1x2}
cd "$here"
data=../shared/data
mkdir -p "$work"
[ -f "$work/wiki17m.txt" ] || xz -dkc "$data/wiki17m.txt.xz" > "$work/wiki17m.txt"
ninja -C "$build" -j2 loom
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
for layout in $layouts; do
  np=${layout%x*}
  threads=${layout#*x}
  run="$work/run-${np}x${threads}"
  rm -rf "$run"
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  start=$(date +%s.%N)
  mpirun -np "$np" --oversubscribe --bind-to none --mca mpi_yield_when_idle 1 \
    "$build/loom" train "$config" \
    --set "corpus.paths=[\"$work/wiki17m.txt\"]" --set "run.dir=$run" \
    --set run.threads="$threads" --set glove.threads="$threads" --set glove.epochs="$epochs" \
    --set checkpoint.every_minutes=0 --set progress.interval_s=60 ${BENCH_SET:-} > "$run.log" 2>&1 ||
    { tail -20 "$run.log"; exit 1; }
  end=$(date +%s.%N)
  echo "== $config: $np rank(s) x $threads thread(s), $epochs iterations; load before: $load, after: $(cut -d' ' -f1-3 /proc/loadavg)"
  grep -E "\]\[(vocab|cooccur)\] [0-9]+ (words|tokens)" "$run.log" || true
  python3 - "$run/eval.json" "$start" "$end" "$epochs" <<'PY'
import json, sys
e = json.load(open(sys.argv[1])); wall = float(sys.argv[3]) - float(sys.argv[2]); epochs = int(sys.argv[4])
s = e["seconds"]; a = e["analogy"]; sim = e["similarity"]
pct = lambda c: 100.0 * c["accuracy"]
print(f"phases: vocab {s['vocab']:.1f} s, cooccur {s['cooccur']:.1f} s, training {s['train']:.1f} s, "
      f"export {s['export']:.1f} s, evaluation {s['eval']:.1f} s; wall (mpirun) {wall:.1f} s")
rate = e["updates"] / s["train"] if s["train"] > 0 else 0
cores = e["world_size"] * e["threads"]
print(f"final loss {e.get('final_loss', float('nan')):.4f} (reference 0.0301); {rate / 1e6:.2f} M updates/s, "
      f"{rate / 1e6 / cores:.2f} per core; peak RSS per rank {', '.join(f'{g:.2f}' for g in e['peak_rss_gb'])} GB")
print(f"analogy total {pct(a['total']):.2f} % ({a['total']['answered']} of {a['total']['questions']} answered), "
      f"semantic {pct(a['semantic']):.2f} %, syntactic {pct(a['syntactic']):.2f} %")
print(f"WordSim-353 rho {sim['spearman']:.4f} ({sim['used']} of {sim['pairs']} pairs)")
print(f"ratios to GloVe's reference: wall {wall / 987:.3f} x 987 s (target <= 0.2), "
      f"analogy {pct(a['total']) / 33.4:.3f} x 33.4 %, rho {sim['spearman'] / 0.466:.3f} x 0.466"
      + ("" if epochs == 15 else f"  [{epochs} iterations, not 15]"))
PY
  rm -f "$run"/cooccur.part-*.h5 "$run"/checkpoints/*.h5
done
