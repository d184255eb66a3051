#!/usr/bin/env bash
# BERT pre-training, loom side by side with PyTorch / Hugging Face in one run, on 2 cores,
# float32, forward + backward + clipping + AdamW:
#   1. the 2-thread OpenBLAS sgemm ceiling (bench/sgemm_peak);
#   2. speed and memory per shape: loom (`loom train` with a BERT config, on raw Wikipedia
#      with a WordPiece vocabulary of the shape's size) and PyTorch (bench/bert_torch.py:
#      Hugging Face BertForPreTraining, no dropout, 20 masked positions per sequence, random
#      tokens, 2 threads): tokens/s, matmul GFLOP/s against the sgemm ceiling (both counted
#      as BertNet::matmul_flops counts: the MLM head on the masked rows only), peak RSS of
#      the process (/usr/bin/time), and the ratios loom / PyTorch. Targets: tiny >= 1.5 x,
#      base >= 1.2 x and loom's matmul rate >= 60 % of sgemm, loom's RSS <= PyTorch's;
#        tiny  bert-tiny: vocab 8192,  4 layers,  4 heads, hidden 256, intermediate 1024, seq 128, batch 16
#        base  BERT-base: vocab 30522, 12 layers, 12 heads, hidden 768, intermediate 3072, seq 128, batch 8
#   3. scaling: loom 2 ranks x 1 thread against 1 rank x 1 thread on bert-tiny at the same
#      global batch (target 1.8 x), beside the machine's sgemm 2-thread / 1-thread ratio;
#   4. learning (LEARN=1, the default): the same small BERT, data and schedule trained by
#      loom and by Hugging Face for LEARN_MINUTES of wall time each (default 10), then
#      held-out MLM and NSP accuracy of both, with chance levels. The BERT is LEARN_SHAPE
#      (default 2 layers x 128, 4 heads, intermediate 512, seq 64, batch 32, 10 masked
#      positions, vocab 8192): smaller than bert-tiny because next-sentence prediction
#      only leaves chance after ~100k examples (measured: bert-tiny at seq 128 sees ~12k in
#      10 min and stays at chance on both sides; loom sees 160-200k of this shape's);
#
# Learning, how it is kept fair. Both sides train on exactly loom's examples: the corpus is
# CORPUS_MB of raw Wikipedia (blank-line separated articles), the vocabulary an 8192-token
# WordPiece learned by `loom tokenizer train --kind wordpiece`, the token shards those of
# loom's own calibration run (tokens.dir shared), and bench/bert_dump_examples writes loom's
# training examples in loom's global order with loom's masking (global batch s = rows
# [s B, (s + 1) B)) and the held-out examples loom evaluates (the first EVAL_EXAMPLES of the
# held-out split) as .npy; bench/bert_learn_torch.py trains HF's BertForPreTraining on them.
# Optimizer and schedule are the same: AdamW (0.9, 0.999, eps 1e-6), weight decay 0.01 on
# all but biases and LayerNorm weights, clip 1.0, lr LEARN_LR, linear warm-up over the first
# 10 % of steps then linear decay to 0 at the last. loom has no time-based stop, and a
# schedule needs its length up front, so each side first times CALIBRATE_STEPS steps alone
# (not counted) and then runs the number of steps that fills LEARN_MINUTES at that rate,
# its schedule decaying to 0 at its own end: the faster tool sees more examples in the same
# wall time - that is the comparison. The wall times actually taken are printed beside: a
# calibrated rate can miss the whole run's by up to ~25 % either way (measured on both sides).
# The initialisations differ in their draws (both N(0, 0.02), HF's own and loom's).
#
# Usage: bench/bert.sh [BUILD_DIR] [WORK_DIR]      (BUILD_DIR configured with Release)
#   SHAPES="tiny" bench/bert.sh ...        only some shapes (tiny base)
#   TOOLS="pytorch" bench/bert.sh ...      only some tools (loom pytorch); sgemm always runs
#   STEPS_TINY=20 STEPS_BASE=5 WARMUP=2    timed steps per shape (both run WARMUP more first)
#   SCALING=0 / LEARN=0                    skip the scaling / the learning comparison
#   LEARN_MINUTES=10 LEARN_LR=1e-3 CALIBRATE_STEPS=50 EVAL_EXAMPLES=8192 CORPUS_MB=20
#   LEARN_SHAPE="2 4 128 512 64 32 10"    layers heads hidden intermediate seq_len batch max_predictions
#   BENCH_SET="--set bert.micro_batch=8"   extra loom overrides
# WordPiece encoding throughput (loom against Hugging Face tokenizers) is bench/wordpiece.sh.
# Needs: .venv with torch + transformers (scripts/setup.sh). Run on an idle machine: the
# load average is printed before and after every run. PyTorch runs with
# OMP_WAIT_POLICY=PASSIVE unless set (see bench/gpt_torch.py).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
work=${2:-${TMPDIR:-/tmp}/loom-bert-bench}
shapes=${SHAPES:-tiny base}
tools=${TOOLS:-loom pytorch}
steps_tiny=${STEPS_TINY:-20}
steps_base=${STEPS_BASE:-5}
warmup=${WARMUP:-2}
corpus_mb=${CORPUS_MB:-20}
learn_minutes=${LEARN_MINUTES:-10}
learn_lr=${LEARN_LR:-1e-3}
# the learning comparison's BERT: layers heads hidden intermediate seq_len batch max_predictions
read -r learn_layers learn_heads learn_hidden learn_inter learn_seq learn_batch learn_pred \
  <<< "${LEARN_SHAPE:-2 4 128 512 64 32 10}"
calibrate=${CALIBRATE_STEPS:-50}
eval_examples=${EVAL_EXAMPLES:-8192}
seed=1
threads=2
cd "$here"
data=../shared/data
py=${PYTHON:-$here/.venv/bin/python}

# ==== ASSUMPTIONS about loom's BERT (models/bert, launch/kinds/bert.h): adjust here only =====
# The config file, the `loom train` overrides per shape, how a WordPiece vocabulary of V
# tokens is made, the keys read from RUN_DIR/eval.json: tokens_per_s, matmul_gflops,
# peak_rss_gb (a number or a list per rank), final_loss, mlm_accuracy, nsp_accuracy,
# mlm_loss, nsp_loss; and that the held-out split is tokens.heldout_fraction (0.1) of the
# stream, the data seed run.seed, and loom evaluates the first bert.eval_batches x
# bert.batch_size held-out examples (Bert::evaluate_heldout), as bert_dump_examples reads them.
LOOM_BERT_CONFIG=${LOOM_BERT_CONFIG:-examples/bert.toml}
loom_shape_args() {   # loom_shape_args SHAPE STEPS: the [bert] overrides of a shape
  local steps=$2
  case $1 in
    tiny) echo "--set bert.n_layer=4 --set bert.n_head=4 --set bert.hidden=256 --set bert.intermediate=1024" \
               "--set bert.seq_len=128 --set bert.batch_size=16 --set bert.max_predictions=20 --set bert.steps=$steps" ;;
    learn) echo "--set bert.n_layer=$learn_layers --set bert.n_head=$learn_heads --set bert.hidden=$learn_hidden" \
                "--set bert.intermediate=$learn_inter --set bert.seq_len=$learn_seq --set bert.batch_size=$learn_batch" \
                "--set bert.max_predictions=$learn_pred --set bert.steps=$steps" ;;
    base) echo "--set bert.n_layer=12 --set bert.n_head=12 --set bert.hidden=768 --set bert.intermediate=3072" \
               "--set bert.seq_len=128 --set bert.batch_size=8 --set bert.max_predictions=20 --set bert.steps=$steps" ;;
  esac
}
shape_vocab() { case $1 in tiny) echo 8192 ;; base) echo 30522 ;; esac; }
loom_common_args() {  # loom_common_args RUN_DIR CORPUS VOCAB_DIR TOKENS_DIR
  echo "--set run.dir=$1 --set run.threads=$threads --set run.seed=$seed --set corpus.paths=[\"$2\"]" \
       "--set tokens.tokenizer=wordpiece --set tokens.vocab=$3/vocab.txt --set tokens.documents=blank_line" \
       "--set tokens.dir=$4 --set tokens.heldout_fraction=0.1 --set checkpoint.every_minutes=0" \
       "--set checkpoint.every_steps=0"
}
loom_speed_args() { echo "--set bert.eval_every=0 --set bert.eval_batches=1"; }
loom_learn_args() {   # loom_learn_args STEPS EVAL_BATCHES: the learning schedule (as bert_learn_torch.py's)
  echo "--set bert.lr=$learn_lr --set bert.lr_min=0 --set bert.warmup_steps=$(($1 / 10))" \
       "--set bert.optimizer=adamw --set bert.schedule=linear --set bert.weight_decay=0.01" \
       "--set bert.grad_clip=1.0 --set bert.eval_every=0 --set bert.eval_batches=$2"
}
loom_train_tokenizer() {  # loom_train_tokenizer V CORPUS DIR: DIR/vocab.txt
  "$build/loom" tokenizer train --kind wordpiece --corpus "$2" --vocab-size "$1" --out "$3" \
    --documents blank_line --set run.threads=$threads
}
# ============================================================================================

has() { [[ " $tools " == *" $1 "* ]]; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
# timed LOG CMD...: runs CMD with stdout + stderr into LOG and its peak RSS (KiB, from
# /usr/bin/time) as the log's last line "MAXRSS_KB N"; shows the log's tail on a failure.
timed() {
  local log=$1
  shift
  /usr/bin/time -f "MAXRSS_KB %M" -a -o "$log.rss" "$@" > "$log" 2>&1 || { tail -20 "$log"; exit 1; }
  tail -1 "$log.rss" >> "$log"
  rm -f "$log.rss"
}
rss_kb() { awk '/^MAXRSS_KB/ {v = $2} END {print v + 0}' "$1"; }
mkdir -p "$work"
work=$(cd "$work" && pwd)
targets="sgemm_peak"
has loom && targets="$targets loom bert_dump_examples"
ninja -C "$build" -j2 $targets
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}   # for PyTorch; loom sets its own threads

echo "== sgemm ceiling: OpenBLAS, $threads threads; load before: $(load)"
"$build/bench/sgemm_peak" "$threads" 1 | tee "$work/sgemm.txt"
peak=$(awk '/^peak_gflops/ {print $2}' "$work/sgemm.txt")

corpus="$work/enwiki-${corpus_mb}m.txt"
if has loom || [ "${LEARN:-1}" = 1 ]; then
  # (xz stops with SIGPIPE when head has enough: not a failure)
  [ -f "$corpus" ] || { xz -dc "$data/enwiki-raw100m.txt.xz" || true; } | head -c "$((corpus_mb << 20))" > "$corpus"
fi
vocab_for() {   # vocab_for V: the WordPiece directory of V tokens, learned once
  local dir="$work/wordpiece-$1"
  if [ ! -f "$dir/vocab.txt" ]; then
    mkdir -p "$dir"
    loom_train_tokenizer "$1" "$corpus" "$dir" > "$dir.log" 2>&1 || { tail -20 "$dir.log" >&2; exit 1; }
  fi
  echo "$dir"
}

for shape in $shapes; do
  steps=$steps_tiny
  [ "$shape" = base ] && steps=$steps_base
  echo
  echo "== $shape: $steps timed steps after $warmup warm-up, $threads threads"
  if has pytorch; then
    echo "-- PyTorch; load before: $(load)"
    timed "$work/torch-$shape.log" "$py" bench/bert_torch.py --shape "$shape" --steps "$steps" \
      --warmup "$warmup" --threads "$threads"
    grep -v '^RESULT \|^MAXRSS_KB' "$work/torch-$shape.log"
  fi
  if has loom; then
    vocab_size=$(shape_vocab "$shape")
    vocab_dir=$(vocab_for "$vocab_size")
    run="$work/loom-$shape"
    rm -rf "$run"
    echo "-- loom; load before: $(load)"
    # shellcheck disable=SC2046  # the overrides are words by design
    timed "$run.log" "$build/loom" train "$LOOM_BERT_CONFIG" \
      $(loom_common_args "$run" "$corpus" "$vocab_dir" "$work/tokens-$vocab_size") \
      $(loom_shape_args "$shape" "$((steps + warmup))") $(loom_speed_args) ${BENCH_SET:-}
  fi
  echo "-- load after: $(load)"
  python3 - "$shape" "$peak" "$work/torch-$shape.log" "$work/loom-$shape.log" "$work/loom-$shape/eval.json" \
    "$(has pytorch && echo 1 || echo 0)" "$(has loom && echo 1 || echo 0)" <<'PY'
import json, re, sys
shape, peak = sys.argv[1], float(sys.argv[2])
def rss_gib(log):
    return int(re.findall(r"^MAXRSS_KB (\d+)", open(log).read(), re.M)[-1]) / 1024 ** 2
t = l = None
if sys.argv[6] == "1":
    t = json.loads([x for x in open(sys.argv[3]) if x.startswith("RESULT ")][-1][7:])
    t["rss"] = rss_gib(sys.argv[3])
    print(f"PyTorch {shape}: {t['tokens_per_s']:,.0f} tokens/s, matmul {t['matmul_gflops']:.1f} GFLOP/s "
          f"({t['matmul_gflops'] / peak:.0%} of sgemm {peak:.1f}; {t['matmul_gflops_hf_head']:.1f} with its "
          f"MLM head on every row), peak RSS {t['rss']:.2f} GiB")
if sys.argv[7] == "1":
    l = json.load(open(sys.argv[5]))
    l["rss"] = rss_gib(sys.argv[4])
    g = l.get("matmul_gflops", float("nan"))
    print(f"loom    {shape}: {l['tokens_per_s']:,.0f} tokens/s, matmul {g:.1f} GFLOP/s ({g / peak:.0%} of sgemm "
          f"{peak:.1f}; target 60 %), peak RSS {l['rss']:.2f} GiB")
if t and l:
    target = {"tiny": 1.5, "base": 1.2}.get(shape, float("nan"))
    print(f"ratios loom / PyTorch {shape}: tokens/s {l['tokens_per_s'] / t['tokens_per_s']:.2f} x "
          f"(target {target} x), peak RSS {l['rss'] / t['rss']:.2f} x (target <= 1)")
PY
done

if [ "${SCALING:-1}" = 1 ] && has loom; then
  # 2 ranks x 1 thread against 1 rank x 1 thread on bert-tiny at the same global batch
  # (target: >= 1.8x), with the machine's own ceiling beside it: sgemm on 2 threads against
  # 1 (two cores shared by two ranks cannot beat two cores shared by two threads).
  echo
  echo "== scaling: bert-tiny, 1 rank x 1 thread against 2 ranks x 1 thread (same global batch)"
  "$build/bench/sgemm_peak" 1 1 > "$work/sgemm1.txt"
  peak1=$(awk '/^peak_gflops/ {print $2}' "$work/sgemm1.txt")
  vocab_dir=$(vocab_for 8192)
  for np in 1 2; do
    run="$work/loom-scale-$np"
    rm -rf "$run"
    echo "-- loom np $np; load before: $(load)"
    launch=("$build/loom")
    [ "$np" -gt 1 ] && launch=(mpirun -np "$np" --oversubscribe --bind-to none "$build/loom")
    # shellcheck disable=SC2046
    "${launch[@]}" train "$LOOM_BERT_CONFIG" $(loom_common_args "$run" "$corpus" "$vocab_dir" "$work/tokens-8192") \
      $(loom_shape_args tiny "$((steps_tiny + warmup))") $(loom_speed_args) --set run.threads=1 ${BENCH_SET:-} \
      > "$run.log" 2>&1 || { tail -20 "$run.log"; exit 1; }
  done
  python3 - "$work/loom-scale-1/eval.json" "$work/loom-scale-2/eval.json" "$peak1" "$peak" <<'PY'
import json, sys
a, b = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
p1, p2 = float(sys.argv[3]), float(sys.argv[4])
loss = lambda e: f"{e['final_loss']:.5f}" if "final_loss" in e else "?"
print(f"loom 1x1: {a['tokens_per_s']:,.0f} tokens/s, loss {loss(a)}; 2x1: {b['tokens_per_s']:,.0f} tokens/s, "
      f"loss {loss(b)}")
hidden = b.get("allreduce", {}).get("hidden_fraction")
print(f"scaling 2x1 / 1x1: {b['tokens_per_s'] / a['tokens_per_s']:.2f} x (target 1.8 x); "
      f"machine ceiling sgemm 2 threads / 1 thread: {p2:.1f} / {p1:.1f} = {p2 / p1:.2f} x"
      + (f"; allreduce hidden {hidden:.0%}" if hidden is not None else ""))
PY
fi

if [ "${LEARN:-1}" = 1 ]; then
  echo
  echo "== learning: BERT of $learn_layers layers x $learn_hidden ($learn_heads heads, intermediate $learn_inter), seq $learn_seq, batch $learn_batch, on ${corpus_mb} MB of raw Wikipedia, $learn_minutes min of wall time each, $threads threads"
  vocab_dir=$(vocab_for 8192)
  tokens="$work/tokens-8192"
  B=$learn_batch
  T=$learn_seq
  seconds=$((learn_minutes * 60))
  # loom's rate: CALIBRATE_STEPS steps after its first (eval.json's tokens_per_s); this
  # run also writes (or reuses) the token shards both sides read.
  run="$work/loom-learn-calibrate"
  rm -rf "$run"
  echo "-- calibrating loom ($calibrate steps); load before: $(load)"
  # shellcheck disable=SC2046
  timed "$run.log" "$build/loom" train "$LOOM_BERT_CONFIG" $(loom_common_args "$run" "$corpus" "$vocab_dir" "$tokens") \
    $(loom_shape_args learn "$((calibrate + 1))") $(loom_learn_args "$calibrate" 1) ${BENCH_SET:-}
  loom_steps=$(python3 -c "import json; e = json.load(open('$run/eval.json')); print(max(1, int($seconds * e['tokens_per_s'] / ($B * $T))))")
  dump() {   # dump SPLIT COUNT DIR: loom's examples [0, COUNT) of SPLIT as .npy in DIR
    "$build/bench/bert_dump_examples" "$tokens" "$vocab_dir/vocab.txt" "$3" --split "$1" --first 0 \
      --count "$2" --seed "$seed" --heldout-fraction 0.1 --seq-len "$T" --max-predictions "$learn_pred" > "$3.log" 2>&1 ||
      { tail -20 "$3.log"; exit 1; }
  }
  torch_common=(--batch-size "$B" --n-layer "$learn_layers" --n-head "$learn_heads" --hidden "$learn_hidden"
                --intermediate "$learn_inter" --lr "$learn_lr"
                --weight-decay 0.01 --grad-clip 1.0 --threads "$threads" --seed "$seed")
  dump train $(((calibrate + 2) * B)) "$work/dump-calibrate"
  echo "-- calibrating PyTorch ($calibrate steps); load before: $(load)"
  "$py" bench/bert_learn_torch.py --train "$work/dump-calibrate" --calibrate "$calibrate" "${torch_common[@]}" \
    > "$work/torch-learn-calibrate.log" 2>&1 || { tail -20 "$work/torch-learn-calibrate.log"; exit 1; }
  torch_steps=$(sed -n 's/^RESULT //p' "$work/torch-learn-calibrate.log" |
    python3 -c "import json, sys; print(max(1, int($seconds * json.load(sys.stdin)['steps_per_s'])))")
  echo "   $seconds s at the calibrated rates: loom $loom_steps steps, PyTorch $torch_steps steps of $B x $T"
  max_steps=$((loom_steps > torch_steps ? loom_steps : torch_steps))
  dump train $((max_steps * B)) "$work/dump-train"
  dump heldout "$eval_examples" "$work/dump-heldout"

  run="$work/loom-learn"
  rm -rf "$run"
  echo "-- loom: $loom_steps steps; load before: $(load)"
  start=$(date +%s.%N)
  # shellcheck disable=SC2046
  timed "$run.log" "$build/loom" train "$LOOM_BERT_CONFIG" $(loom_common_args "$run" "$corpus" "$vocab_dir" "$tokens") \
    $(loom_shape_args learn "$loom_steps") $(loom_learn_args "$loom_steps" "$((eval_examples / B))") ${BENCH_SET:-}
  end=$(date +%s.%N)
  echo "-- PyTorch: $torch_steps steps; load before: $(load)"
  timed "$work/torch-learn.log" "$py" bench/bert_learn_torch.py --train "$work/dump-train" \
    --heldout "$work/dump-heldout" --steps "$torch_steps" "${torch_common[@]}"
  grep -v '^RESULT \|^MAXRSS_KB' "$work/torch-learn.log"
  echo "-- load after: $(load)"
  # The check that PyTorch saw loom's held-out examples: loom's trained model, exported for
  # transformers, evaluated on the dump by bert_learn_torch.py must score what loom's own
  # evaluation wrote into eval.json (losses equal to 1e-4 relative: float32 sums in two orders).
  # RUN_DIR/hf is the export `loom train` writes after training (Note [BERT export layout]).
  export_log="$work/loom-learn-export.log"
  hf="$run/hf"
  [ -f "$hf/model.safetensors" ] || { hf="$work/loom-learn-hf" &&
    "$build/loom" export "$run/checkpoints" --format safetensors --out "$hf" > "$export_log" 2>&1; } || true
  if "$py" bench/bert_learn_torch.py --from-export "$hf" --heldout "$work/dump-heldout" \
       --threads "$threads" >> "$export_log" 2>&1; then
    python3 - "$run/eval.json" "$export_log" <<'PY'
import json, sys
l = json.load(open(sys.argv[1]))
h = json.loads([x for x in open(sys.argv[2]) if x.startswith("RESULT ")][-1][7:])
close = lambda a, b: abs(a - b) <= 1e-4 * max(1.0, abs(b))
same = close(h["mlm_loss"], l["mlm_loss"]) and close(h["nsp_loss"], l["nsp_loss"])
print(f"check: loom's model exported and scored by Hugging Face on the dumped held-out examples: MLM loss "
      f"{h['mlm_loss']:.6f} accuracy {h['mlm_accuracy']:.4f}, NSP loss {h['nsp_loss']:.6f} accuracy "
      f"{h['nsp_accuracy']:.4f}; loom's eval.json: MLM loss {l['mlm_loss']:.6f} accuracy {l['mlm_accuracy']:.4f}, "
      f"NSP loss {l['nsp_loss']:.6f} accuracy {l['nsp_accuracy']:.4f} -> "
      f"{'same data' if same else 'DIFFERENT: the dump is not what loom evaluated'}")
PY
  else
    echo "check skipped: loom export / the HF evaluation of it failed (see $export_log)"
  fi
  python3 - "$run/eval.json" "$(python3 -c "print($end - $start)")" "$work/torch-learn.log" "$loom_steps" <<'PY'
import json, sys
l = json.load(open(sys.argv[1])); wall = float(sys.argv[2])
t = json.loads([x for x in open(sys.argv[3]) if x.startswith("RESULT ")][-1][7:])
print(f"held-out: {t['examples']} examples (loom's first held-out ones), {t['masked_positions']} masked positions")
print(f"loom   : {sys.argv[4]} steps, wall {l.get('seconds', {}).get('train', float('nan')):.0f} s (training and "
      f"its final evaluation; the process {wall:.0f} s), MLM accuracy {l['mlm_accuracy']:.4f}, "
      f"NSP accuracy {l['nsp_accuracy']:.4f}, MLM loss {l.get('mlm_loss', float('nan')):.4f}, "
      f"NSP loss {l.get('nsp_loss', float('nan')):.4f}")
print(f"PyTorch: {t['steps']} steps, wall {t['train_s']:.0f} s (training), MLM accuracy {t['mlm_accuracy']:.4f}, "
      f"NSP accuracy {t['nsp_accuracy']:.4f}, MLM loss {t['mlm_loss']:.4f}, NSP loss {t['nsp_loss']:.4f}")
print(f"chance : MLM {t['mlm_chance']:.4f} (always id {t['mlm_chance_id']}, the most frequent masked token), "
      f"NSP 0.5 (larger class in these examples: {t['nsp_chance']:.4f})")
PY
fi
