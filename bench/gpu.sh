#!/usr/bin/env bash
# GPU training speed, loom beside PyTorch on the same GPU, the same batch and precision
# (issue 19's targets):
#   1. the machine's ceiling: a bf16 8192^3 matmul through PyTorch (TFLOP/s);
#   2. for each case, loom (bench/gpu_step_bench: Gpt/Bert::train_step on cuda:0, the step
#      `loom train` runs with run.device = "cuda") and PyTorch eager and torch.compile
#      (bench/gpu_torch.py: nanoGPT's GPT-2 / Hugging Face BertForPreTraining, bf16
#      autocast, fused AdamW, clipping) doing whole training steps on random ids:
#      tokens/s, the ratios loom / eager and loom / compile, and MFU (matmul FLOPs of
#      forward + backward, the same count on both sides, over PEAK_TFLOPS);
#        gpt      GPT-2 124M, seq 1024, batch GPT_BATCH (8)
#        bert128  BERT-base, seq 128, 20 masked positions, batch BERT_BATCH (64)
#        bert512  BERT-base, seq 512, 80 masked positions, batch BERT512_BATCH (16)
#   3. a table of all of it, and RESULT lines (JSON) for the README.
#
# Usage: bench/gpu.sh [BUILD_DIR]
#   BUILD_DIR holds gpu_step_bench (default build). When it is missing, the script builds
#   it there (cmake + ninja with CUDA; needs MPI and HDF5 development files, which the lent
#   GPU machines lack: there use the bundle of bench/gpu_bundle.sh, made on a build
#   machine, whose bin/ is BUILD_DIR and whose lib/ goes into LOOM_GPU_LIBS).
#   LOOM_GPU_LIBS=DIR       shared libraries the machine lacks (MPI, HDF5, OpenBLAS), put
#                           first on LD_LIBRARY_PATH of loom's binary (not PyTorch's)
#   CASES="gpt bert128"     only some cases (gpt bert128 bert512)
#   TOOLS="loom eager"      only some tools (loom eager compile)
#   PRECISION=bf16          fp32 | tf32 | bf16 for both sides
#   STEPS=20 WARMUP=3       timed and untimed steps per run
#   PEAK_TFLOPS=989.4       the MFU denominator (H100 SXM / H200 dense bf16; tf32 494.7)
#   PYTHON=python3          the python with torch (and transformers for BERT)
# Without a GPU it stops at once with a message and status 2.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
cases=${CASES:-gpt bert128 bert512}
tools=${TOOLS:-loom eager compile}
precision=${PRECISION:-bf16}
steps=${STEPS:-20}
warmup=${WARMUP:-3}
peak=${PEAK_TFLOPS:-989.4}
py=${PYTHON:-python3}
gpt_batch=${GPT_BATCH:-8}
bert_batch=${BERT_BATCH:-64}
bert512_batch=${BERT512_BATCH:-16}
cd "$here"

if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
  echo "bench/gpu.sh: no NVIDIA GPU on $(hostname) (nvidia-smi $(command -v nvidia-smi >/dev/null 2>&1 && echo 'lists none' || echo 'not found'));" \
       "run it on a GPU machine (README, Training on GPUs)" >&2
  exit 2
fi
# The carried libraries go to loom's binary only: PyTorch keeps the machine's own.
loom_env=()
if [ -n "${LOOM_GPU_LIBS:-}" ]; then
  loom_env=(env "LD_LIBRARY_PATH=$LOOM_GPU_LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")
fi
bench="$build/bench/gpu_step_bench"              # a build tree
[ -x "$bench" ] || bench="$build/gpu_step_bench"  # a bundle's bin/
if [ ! -x "$bench" ]; then
  bench="$build/bench/gpu_step_bench"
  echo "== building gpu_step_bench in $build"
  if [ ! -f "$build/CMakeCache.txt" ]; then
    cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLOOM_CUDA=ON
  fi
  ninja -C "$build" gpu_step_bench
fi

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv,noheader
"$py" bench/gpu_torch.py --matmul-peak

log=$(mktemp)
trap 'rm -f "$log"' EXIT
run() {   # run TOOL CASE ARGS...: prints its output, appends its RESULT line to $log
  local tool=$1 name=$2
  shift 2
  local out
  echo "== $name, $tool"
  if out=$("$@" 2>&1); then
    printf '%s\n' "$out"
    printf '%s\n' "$out" | sed -n 's/^RESULT //p' | sed "s/^{/{\"case\": \"$name\", /" >>"$log"
  else
    printf '%s\n' "$out"
    echo "   ($tool failed on $name)"
  fi
}
for c in $cases; do
  case $c in
    gpt) largs=(--model gpt --batch "$gpt_batch" --seq 1024) ;;
    bert128) largs=(--model bert --batch "$bert_batch" --seq 128 --predictions 20) ;;
    bert512) largs=(--model bert --batch "$bert512_batch" --seq 512 --predictions 80) ;;
    *) echo "bench/gpu.sh: unknown case $c (gpt bert128 bert512)" >&2; exit 2 ;;
  esac
  common=(--precision "$precision" --steps "$steps" --warmup "$warmup" --peak-tflops "$peak")
  for t in $tools; do
    case $t in
      loom) run loom "$c" "${loom_env[@]}" "$bench" "${largs[@]}" "${common[@]}" ;;
      eager) run eager "$c" "$py" bench/gpu_torch.py "${largs[@]}" "${common[@]}" ;;
      compile) run compile "$c" "$py" bench/gpu_torch.py --compile "${largs[@]}" "${common[@]}" ;;
      *) echo "bench/gpu.sh: unknown tool $t (loom eager compile)" >&2; exit 2 ;;
    esac
  done
done

echo
echo "== summary ($precision, $steps timed steps, MFU of $peak TFLOP/s)"
"$py" - "$log" <<'EOF'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
by = {}
for r in rows:
    by.setdefault(r["case"], {})[r["tool"]] = r
print("%-8s %-16s %12s %9s %7s %12s %14s" % ("case", "tool", "tokens/s", "TFLOP/s", "MFU", "loom/this", ""))
for case, tools in by.items():
    loom = tools.get("loom")
    for tool, r in tools.items():
        ratio = "%.2fx" % (loom["tokens_per_s"] / r["tokens_per_s"]) if loom and tool != "loom" else ""
        print("%-8s %-16s %12.0f %9.1f %6.1f%% %12s" % (case, tool, r["tokens_per_s"], r["tflops"],
                                                      100 * r["mfu"], ratio))
for r in rows:
    print("RESULT " + json.dumps(r))
EOF
