#!/usr/bin/env bash
# Byte-level BPE encoding throughput on 100 MB of raw Wikipedia, loom side by side with
# Hugging Face `tokenizers` (PyPI, in .venv) on the same vocab.json + merges.txt:
#   1. a GPT-2-sized vocabulary (50,257 tokens) learned from the corpus by
#      `loom tokenizer train` (once; reused from WORK_DIR);
#   2. Hugging Face: hf_bpe.py speed (encode_batch over the corpus's lines, 2 threads);
#   3. loom: `loom tokenize` of the same lines (tokens.documents = line) with run.threads 2
#      (one rank), then 2 ranks x 1 thread; MB/s as loom prints it (read + encode + write
#      the shards), against Hugging Face's encode alone.
# The ids are the same: tests/io/test_bpe_hf holds loom's ids against Hugging Face's on
# several MB of this corpus and on tricky strings; here the token counts agree (loom's
# count = Hugging Face's + one <|endoftext|> per line).
#
# Usage: bench/tokenize.sh [BUILD_DIR] [WORK_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
work=${2:-${TMPDIR:-/tmp}/loom-tokenize-bench}
py=${PYTHON:-$here/.venv/bin/python}
cd "$here"
mkdir -p "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE
ninja -C "$build" -j2 loom
load() { cut -d' ' -f1-3 /proc/loadavg; }
corpus="$work/enwiki-raw100m.txt"
[ -f "$corpus" ] || xz -dc ../shared/data/enwiki-raw100m.txt.xz > "$corpus"
vocab="$work/bpe-50257"
if [ ! -f "$vocab/merges.txt" ]; then
  echo "== learning a 50,257-token vocabulary (loom tokenizer train, 2 ranks)"
  mpirun -np 2 --oversubscribe --bind-to none "$build/loom" tokenizer train --corpus "$corpus" \
    --vocab-size 50257 --out "$vocab" --documents blank_line --set run.threads=1
fi
mb=$(du -m "$corpus" | cut -f1)
echo "== $corpus: $mb MB; load before: $(load)"
echo "-- Hugging Face tokenizers, 2 threads"
hf=$("$py" tests/tools/hf_bpe.py speed --dir "$vocab" --text "$corpus" --threads 2 | tee /dev/stderr |
     grep encode_batch | grep -o '[0-9.]* MB/s' | cut -d' ' -f1)
run_loom() {  # run_loom LABEL LAUNCH... : one fresh tokenize, prints MB/s
  local label=$1; shift
  rm -rf "$work/run"
  local out
  out=$("$@" "$build/loom" tokenize --set "corpus.paths=[\"$corpus\"]" --set tokens.tokenizer=bpe \
        --set "tokens.vocab=$vocab/vocab.json" --set "tokens.merges=$vocab/merges.txt" \
        --set tokens.documents=line --set "run.dir=$work/run" "${extra[@]}" 2>/dev/null | tail -1)
  echo "-- loom $label: $out" >&2
  echo "$out" | grep -o '[0-9.]* MB/s' | cut -d' ' -f1
}
extra=(--set run.threads=2)
l1=$(run_loom "1 rank x 2 threads")
extra=(--set run.threads=1)
l2=$(run_loom "2 ranks x 1 thread" mpirun -np 2 --oversubscribe --bind-to none)
echo "-- load after: $(load)"
python3 - "$hf" "$l1" "$l2" <<'PY'
import sys
hf, a, b = (float(x) for x in sys.argv[1:])
print(f"Hugging Face 2 threads {hf:.2f} MB/s; loom 1x2 {a:.2f} MB/s ({a / hf:.2f} x), 2x1 {b:.2f} MB/s ({b / hf:.2f} x)")
PY
