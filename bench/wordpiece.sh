#!/usr/bin/env bash
# BERT WordPiece encoding throughput on 100 MB of raw Wikipedia, loom side by side with
# Hugging Face `tokenizers`' BertWordPieceTokenizer (PyPI, in .venv) on the same vocab.txt:
#   1. an uncased 30,522-token vocabulary (BERT-base's size) learned from the corpus by
#      `loom tokenizer train --kind wordpiece` (once; reused from WORK_DIR);
#   2. Hugging Face: tests/python/hf_wordpiece.py speed - encode_batch over the corpus's
#      non-empty lines on 2 threads (RAYON_NUM_THREADS=2), timed alone;
#   3. loom: wordpiece_tool encode - encode_documents over the same lines on 2 threads,
#      timed alone (the same work as HF's figure); then `loom tokenize` of the same lines
#      (tokens.documents = line, run.threads 2, one rank): read + encode + write the shards.
# Both print the token count and the CRC-32 of the id stream (each line's ids then [SEP]):
# equal counts and CRCs mean identical ids on all 100 MB.
#
# Usage: bench/wordpiece.sh [BUILD_DIR] [WORK_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
work=${2:-${TMPDIR:-/tmp}/loom-wordpiece-bench}
py=${PYTHON:-$here/.venv/bin/python}
cd "$here"
mkdir -p "$work"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE
ninja -C "$build" -j2 loom wordpiece_tool
load() { cut -d' ' -f1-3 /proc/loadavg; }
corpus="$work/enwiki-raw100m.txt"
[ -f "$corpus" ] || xz -dc ../shared/data/enwiki-raw100m.txt.xz > "$corpus"
vocab="$work/wordpiece-30522"
if [ ! -f "$vocab/vocab.txt" ]; then
  echo "== learning an uncased 30,522-token WordPiece vocabulary (loom tokenizer train, 2 ranks)"
  /usr/bin/time -f "   %e s, %M KB peak per rank" \
    mpirun -np 2 --oversubscribe --bind-to none "$build/loom" tokenizer train --kind wordpiece \
    --corpus "$corpus" --vocab-size 30522 --out "$vocab" --documents blank_line --set run.threads=1
fi
mb=$(du -m "$corpus" | cut -f1)
echo "== $corpus: $mb MB, vocabulary $(wc -l < "$vocab/vocab.txt") tokens; load before: $(load)"
echo "-- Hugging Face tokenizers BertWordPieceTokenizer, 2 threads"
hf_line=$("$py" tests/python/hf_wordpiece.py speed --vocab "$vocab/vocab.txt" --text "$corpus" --threads 2)
echo "$hf_line"
echo "-- loom WordPiece, 2 threads"
loom_line=$("$build/tests/wordpiece_tool" encode "$vocab/vocab.txt" "$corpus" 2)
echo "$loom_line"
echo "-- loom tokenize (read + encode + write shards), 1 rank x 2 threads"
rm -rf "$work/run"
"$build/loom" tokenize --set "corpus.paths=[\"$corpus\"]" --set tokens.tokenizer=wordpiece \
  --set "tokens.vocab=$vocab/vocab.txt" --set tokens.documents=line --set "run.dir=$work/run" \
  --set run.threads=2 2>/dev/null | tail -1
echo "-- load after: $(load)"
python3 - "$hf_line" "$loom_line" <<'PY'
import re, sys
def parse(line):
    tokens = int(re.search(r"(\d+) tokens", line).group(1))
    crc = re.search(r"crc32 ([0-9a-f]+)", line).group(1)
    mbs = float(re.search(r"([0-9.]+) MB/s", line).group(1))
    return tokens, crc, mbs
ht, hc, hm = parse(sys.argv[1])
lt, lc, lm = parse(sys.argv[2])
same = "identical ids" if (ht, hc) == (lt, lc) else "IDS DIFFER"
print(f"{same}: {lt} tokens, crc32 {lc} (HF {ht}, {hc}); "
      f"Hugging Face 2 threads {hm:.2f} MB/s, loom 2 threads {lm:.2f} MB/s ({lm / hm:.2f} x)")
sys.exit(0 if same == "identical ids" else 1)
PY
