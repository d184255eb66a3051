#!/usr/bin/env bash
# GPT training speed and memory, loom side by side with PyTorch in one run, on 2 cores:
#   1. the 2-thread OpenBLAS sgemm ceiling (bench/sgemm_peak: 2048^3 and GPT step shapes);
#   2. for each shape, loom (`loom train` with a GPT config) and PyTorch (bench/gpt_torch.py:
#      nanoGPT's model in plain torch, float32, torch.set_num_threads(2)) doing forward +
#      backward + AdamW steps: tokens/s, peak RSS, and the ratios loom / PyTorch; loom's
#      matmul GFLOP/s against the sgemm ceiling;
#        tiny  gpt-tiny:    vocab 8192,  4 layers,  4 heads, d 256, seq 256, batch 8
#        124m  GPT-2 124M:  vocab 50257, 12 layers, 12 heads, d 768, seq 256, batch 4
#   3. with SHAKESPEARE=1, nanoGPT's CPU character recipe on tinyshakespeare.txt (4 layers,
#      4 heads, d 128, context 64, batch 12, 2000 iterations; bench/gpt_shakespeare_torch.py
#      has the whole recipe) for both: the validation curve, final val loss, wall seconds.
# PyTorch's random-token steps measure speed only; loom trains on the first CORPUS_MB of
# raw Wikipedia (its loss there is not comparable and not printed as a ratio).
#
# Usage: bench/gpt.sh [BUILD_DIR] [WORK_DIR]      (BUILD_DIR configured with Release)
#   SHAPES="tiny" bench/gpt.sh ...         only some shapes (tiny 124m)
#   TOOLS="pytorch" bench/gpt.sh ...       only some tools (loom pytorch); sgemm always runs
#   STEPS_TINY=20 STEPS_124M=5 WARMUP=2    timed steps per shape (loom runs WARMUP + steps)
#   SHAKESPEARE=1 bench/gpt.sh ...         also the Shakespeare recipe (~5-10 min per tool)
#   SCALING=0 bench/gpt.sh ...             skip loom's 2 ranks x 1 thread vs 1 x 1 on gpt-tiny
#   BENCH_SET="--set gpt.micro_batch=4"    extra loom overrides
# Needs: .venv with torch (scripts/setup.sh; Debian python3-torch 1.13). Run on an idle
# machine: the load average is printed before and after every run. PyTorch runs with
# OMP_WAIT_POLICY=PASSIVE unless set (spin-waiting OpenMP threads are ~10x slower on a
# shared machine; see bench/gpt_torch.py).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
work=${2:-${TMPDIR:-/tmp}/loom-gpt-bench}
shapes=${SHAPES:-tiny 124m}
tools=${TOOLS:-loom pytorch}
steps_tiny=${STEPS_TINY:-20}
steps_124m=${STEPS_124M:-5}
warmup=${WARMUP:-2}
corpus_mb=${CORPUS_MB:-50}
threads=2
cd "$here"
data=../shared/data
py=${PYTHON:-$here/.venv/bin/python}

# ==== ASSUMPTIONS about loom's GPT (models/gpt, launch/kinds/gpt.h): adjust here only ======
# The config file, the `loom train` overrides per shape, how a BPE vocabulary of V tokens is
# made, and the keys read from RUN_DIR/eval.json: tokens_per_s, peak_rss_gb (a number or a
# list per rank), heldout_loss, matmul_gflops.
LOOM_GPT_CONFIG=${LOOM_GPT_CONFIG:-examples/gpt.toml}
loom_shape_args() {   # loom_shape_args SHAPE STEPS: the [gpt] overrides of a shape
  local steps=$2
  case $1 in
    tiny) echo "--set gpt.n_layer=4 --set gpt.n_head=4 --set gpt.d_model=256 --set gpt.seq_len=256 --set gpt.batch_size=8 --set gpt.steps=$steps" ;;
    124m) echo "--set gpt.n_layer=12 --set gpt.n_head=12 --set gpt.d_model=768 --set gpt.seq_len=256 --set gpt.batch_size=4 --set gpt.steps=$steps" ;;
  esac
}
shape_vocab() { case $1 in tiny) echo 8192 ;; 124m) echo 50257 ;; esac; }
loom_common_args() {  # loom_common_args RUN_DIR CORPUS VOCAB_DIR
  echo "--set run.dir=$1 --set run.threads=$threads --set corpus.paths=[\"$2\"]" \
       "--set tokens.tokenizer=bpe --set tokens.vocab=$3/vocab.json --set tokens.merges=$3/merges.txt" \
       "--set tokens.documents=blank_line" \
       "--set gpt.eval_every=0 --set checkpoint.every_minutes=0"
}
loom_train_tokenizer() {  # loom_train_tokenizer V CORPUS DIR: DIR/vocab.json + merges.txt
  "$build/loom" tokenizer train --corpus "$2" --vocab-size "$1" --out "$3" --documents blank_line
}
loom_shakespeare_args() {  # loom_shakespeare_args RUN_DIR TEXT: nanoGPT's char recipe
  echo "--set run.dir=$1 --set run.threads=$threads --set corpus.paths=[\"$2\"]" \
       "--set tokens.tokenizer=char --set tokens.documents=file --set tokens.heldout_fraction=0.1" \
       "--set gpt.n_layer=4 --set gpt.n_head=4 --set gpt.d_model=128 --set gpt.seq_len=64" \
       "--set gpt.batch_size=12 --set gpt.bias=false --set gpt.steps=2000 --set gpt.lr=1e-3" \
       "--set gpt.lr_min=1e-4 --set gpt.warmup_steps=100 --set gpt.beta1=0.9 --set gpt.beta2=0.99" \
       "--set gpt.weight_decay=0.1 --set gpt.decay_embeddings=true --set gpt.grad_clip=1.0" \
       "--set gpt.eval_every=250 --set gpt.eval_batches=20 --set checkpoint.every_minutes=0"
}
# ============================================================================================

has() { [[ " $tools " == *" $1 "* ]]; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
mkdir -p "$work"
targets="sgemm_peak"
has loom && targets="$targets loom"
ninja -C "$build" -j2 $targets
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE

echo "== sgemm ceiling: OpenBLAS, $threads threads; load before: $(load)"
"$build/bench/sgemm_peak" "$threads" 1 | tee "$work/sgemm.txt"
peak=$(awk '/^peak_gflops/ {print $2}' "$work/sgemm.txt")

if has loom; then
  corpus="$work/enwiki-${corpus_mb}m.txt"
  # (xz stops with SIGPIPE when head has enough: not a failure)
  [ -f "$corpus" ] || { xz -dc "$data/enwiki-raw100m.txt.xz" || true; } | head -c "$((corpus_mb << 20))" > "$corpus"
fi

for shape in $shapes; do
  steps=$steps_tiny
  [ "$shape" = 124m ] && steps=$steps_124m
  echo
  echo "== $shape: $steps timed steps after $warmup warm-up, $threads threads"
  torch_json=""
  loom_json=""
  if has pytorch; then
    echo "-- PyTorch; load before: $(load)"
    "$py" bench/gpt_torch.py --shape "$shape" --steps "$steps" --warmup "$warmup" \
      --threads "$threads" > "$work/torch-$shape.log" 2>&1 || { tail -20 "$work/torch-$shape.log"; exit 1; }
    grep -v '^RESULT ' "$work/torch-$shape.log"
    torch_json=$(sed -n 's/^RESULT //p' "$work/torch-$shape.log")
  fi
  if has loom; then
    vocab_size=$(shape_vocab "$shape")
    vocab_dir="$work/bpe-$vocab_size"
    if [ ! -f "$vocab_dir/merges.txt" ]; then
      mkdir -p "$vocab_dir"
      loom_train_tokenizer "$vocab_size" "$corpus" "$vocab_dir" > "$vocab_dir.log" 2>&1 ||
        { tail -20 "$vocab_dir.log"; exit 1; }
    fi
    run="$work/loom-$shape"
    rm -rf "$run"
    echo "-- loom; load before: $(load)"
    # shellcheck disable=SC2046  # the overrides are words by design
    "$build/loom" train "$LOOM_GPT_CONFIG" $(loom_common_args "$run" "$corpus" "$vocab_dir") \
      $(loom_shape_args "$shape" "$((steps + warmup))") ${BENCH_SET:-} > "$run.log" 2>&1 ||
      { tail -20 "$run.log"; exit 1; }
    loom_json=$(cat "$run/eval.json")
  fi
  echo "-- load after: $(load)"
  python3 - "$shape" "$peak" "${torch_json:-null}" "${loom_json:-null}" <<'PY'
import json, sys
shape, peak = sys.argv[1], float(sys.argv[2])
t, l = json.loads(sys.argv[3]), json.loads(sys.argv[4])
rss = lambda v: max(v) if isinstance(v, list) else v
if t:
    print(f"PyTorch {shape}: {t['tokens_per_s']:,.0f} tokens/s, model {t['model_gflops']:.1f} GFLOP/s "
          f"({t['model_gflops'] / peak:.0%} of sgemm {peak:.1f}), peak RSS {t['peak_rss_gb']:.2f} GiB")
if l:
    print(f"loom    {shape}: {l['tokens_per_s']:,.0f} tokens/s, matmul {l.get('matmul_gflops', float('nan')):.1f} "
          f"GFLOP/s ({l.get('matmul_gflops', float('nan')) / peak:.0%} of sgemm {peak:.1f}), peak RSS "
          f"{rss(l['peak_rss_gb']):.2f} GB, held-out loss {l.get('heldout_loss', float('nan')):.3f}")
if t and l:
    print(f"ratios loom / PyTorch {shape}: tokens/s {l['tokens_per_s'] / t['tokens_per_s']:.2f} x, "
          f"peak RSS {rss(l['peak_rss_gb']) / t['peak_rss_gb']:.2f} x")
PY
done

if [ "${SCALING:-1}" = 1 ] && has loom; then
  # 2 ranks x 1 thread against 1 rank x 1 thread on gpt-tiny at the same global batch
  # (target: >= 1.8x), with the machine's own ceiling beside it: sgemm on 2 threads against
  # 1 (two cores shared by two ranks cannot beat two cores shared by two threads).
  echo
  echo "== scaling: gpt-tiny, 1 rank x 1 thread against 2 ranks x 1 thread (same global batch)"
  "$build/bench/sgemm_peak" 1 1 > "$work/sgemm1.txt"
  peak1=$(awk '/^peak_gflops/ {print $2}' "$work/sgemm1.txt")
  vocab_dir="$work/bpe-8192"
  for np in 1 2; do
    run="$work/loom-scale-$np"
    rm -rf "$run"
    echo "-- loom np $np; load before: $(load)"
    launch=("$build/loom")
    [ "$np" -gt 1 ] && launch=(mpirun -np "$np" --oversubscribe --bind-to none "$build/loom")
    # shellcheck disable=SC2046
    "${launch[@]}" train "$LOOM_GPT_CONFIG" $(loom_common_args "$run" "$corpus" "$vocab_dir") \
      $(loom_shape_args tiny "$((steps_tiny + warmup))") --set run.threads=1 ${BENCH_SET:-} \
      > "$run.log" 2>&1 || { tail -20 "$run.log"; exit 1; }
  done
  python3 - "$work/loom-scale-1/eval.json" "$work/loom-scale-2/eval.json" "$peak1" "$peak" <<'PY'
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
p1, p2 = float(sys.argv[3]), float(sys.argv[4])
print(f"loom 1x1: {a['tokens_per_s']:,.0f} tokens/s, loss {a['final_loss']:.5f}; "
      f"2x1: {b['tokens_per_s']:,.0f} tokens/s, loss {b['final_loss']:.5f}")
print(f"scaling 2x1 / 1x1: {b['tokens_per_s'] / a['tokens_per_s']:.2f} x (target 1.8 x); "
      f"machine ceiling sgemm 2 threads / 1 thread: {p2:.1f} / {p1:.1f} = {p2 / p1:.2f} x; "
      f"allreduce hidden {b['allreduce']['hidden_fraction']:.0%}")
PY
fi

if [ "${SHAKESPEARE:-0}" = 1 ]; then
  text="$data/tinyshakespeare.txt"
  echo
  echo "== Shakespeare (nanoGPT's CPU character recipe), $threads threads"
  if has pytorch; then
    echo "-- PyTorch; load before: $(load)"
    "$py" bench/gpt_shakespeare_torch.py "$text" --threads "$threads" > "$work/torch-shakespeare.log" 2>&1 ||
      { tail -20 "$work/torch-shakespeare.log"; exit 1; }
    grep -v '^RESULT ' "$work/torch-shakespeare.log"
  fi
  if has loom; then
    run="$work/loom-shakespeare"
    rm -rf "$run"
    echo "-- loom; load before: $(load)"
    start=$(date +%s.%N)
    # shellcheck disable=SC2046
    "$build/loom" train "$LOOM_GPT_CONFIG" $(loom_shakespeare_args "$run" "$text") ${BENCH_SET:-} \
      > "$run.log" 2>&1 || { tail -20 "$run.log"; exit 1; }
    end=$(date +%s.%N)
    python3 - "$run/eval.json" "$start" "$end" "$work/torch-shakespeare.log" <<'PY'
import json, os, sys
l = json.load(open(sys.argv[1])); wall = float(sys.argv[3]) - float(sys.argv[2])
print(f"loom: wall {wall:.1f} s, {l['tokens_per_s']:,.0f} tokens/s, final held-out loss {l.get('heldout_loss', float('nan')):.4f}")
if os.path.exists(sys.argv[4]):
    t = json.loads([x for x in open(sys.argv[4]) if x.startswith("RESULT ")][-1][7:])
    print(f"ratios loom / PyTorch: wall {wall / t['wall_s']:.2f} x, final val loss "
          f"{l.get('heldout_loss', float('nan')):.4f} vs {t['final_val_loss']:.4f}")
PY
  fi
fi
