#!/usr/bin/env bash
# word2vec on wiki17m side by side with Debian's fastText and gensim, in one run, with the
# settings of issue 7 (examples/word2vec-wiki17m.toml): dim 100, window 5, negative 5,
# sample 1e-4, 5 epochs, min_count 5, 2 cores. For each architecture (skip-gram, CBOW) it
# runs loom at 2 ranks x 1 thread and 1 rank x 2 threads (and 1 rank x 1 thread for the
# scaling figure), fastText (-minn 0 -maxn 0, 2 threads) and gensim (2 workers), scores
# every tool's vectors with the same evaluation (loom eval: 3CosAdd over the 30,000 most
# frequent words, questions-words.txt; Spearman rho on WordSim-353), and prints wall time,
# words/s (17.15 M x 5 / wall), analogy total (semantic / syntactic), rho and the ratios.
#
# Usage: bench/word2vec.sh [BUILD_DIR] [WORK_DIR]      (BUILD_DIR configured with Release)
#   ARCHS="skipgram" bench/word2vec.sh ...      only some architectures
#   TOOLS="loom gensim" bench/word2vec.sh ...   only some tools (loom fasttext gensim)
#   LAYOUTS="2x1 1x2" bench/word2vec.sh ...     loom layouts, RANKSxTHREADS (default 2x1 1x2 1x1)
#   EPOCHS=1 bench/word2vec.sh ...              fewer epochs (say so when reporting)
#   SEEDS="1234 1 2 5 13" bench/word2vec.sh ... loom's layouts once per seed (run.seed), the
#                                               layouts taking turns; the summary gives the
#                                               means. CBOW's analogy figure moves by up to a
#                                               point from seed to seed (Note [word2vec
#                                               synchronisation]), more than the layouts differ.
# Needs: fasttext, python3-gensim (scripts/debian-packages.txt). Run on an idle machine:
# the load average is printed before and after every run.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
work=${2:-${TMPDIR:-/tmp}/loom-word2vec-bench}
archs=${ARCHS:-skipgram cbow}
tools=${TOOLS:-loom fasttext gensim}
layouts=${LAYOUTS:-2x1 1x2 1x1}
epochs=${EPOCHS:-5}
seeds=${SEEDS:-1234}
cd "$here"
data=../shared/data
mkdir -p "$work"
[ -f "$work/wiki17m.txt" ] || xz -dkc "$data/wiki17m.txt.xz" > "$work/wiki17m.txt"
ninja -C "$build" -j2 loom
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 HDF5_USE_FILE_LOCKING=FALSE
results="$work/results.tsv"
: > "$results"

# score NAME ARCH WALL VECTORS [SEED]: loom's evaluation of any tool's vectors, one line to
# results.
score() {
  local name=$1 arch=$2 wall=$3 vectors=$4 seed=${5:--}
  "$build/loom" eval analogy "$vectors" "$data/questions-words.txt" --restrict 30000 > "$work/$name.analogy" 2>&1
  "$build/loom" eval similarity "$vectors" "$data/wordsim353.tsv" > "$work/$name.sim" 2>&1
  python3 "$here/bench/word2vec_score.py" "$name" "$arch" "$wall" "$epochs" "$work/$name.analogy" "$work/$name.sim" \
    "$seed" | tee -a "$results"
}

timed() {   # timed LOG CMD...: runs CMD, prints the wall seconds
  local log=$1; shift
  local start end
  start=$(date +%s.%N)
  "$@" > "$log" 2>&1 || { tail -20 "$log" >&2; exit 1; }
  end=$(date +%s.%N)
  python3 -c "print(f'{$end - $start:.1f}')"
}

for arch in $archs; do
  cbow=0; [ "$arch" = cbow ] && cbow=1
  for tool in $tools; do
    case $tool in
      loom)
        for seed in $seeds; do
        for layout in $layouts; do
          np=${layout%x*}; threads=${layout#*x}
          run="$work/loom-$arch-$layout"
          rm -rf "$run"
          echo "== loom $arch ${np} rank(s) x ${threads} thread(s), seed $seed; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
          # One thread per rank: each rank bound to a core (Open MPI's default for up to 2
          # ranks; unbound ranks migrate and lose their caches: CBOW 2 x 1 trained at 6.63 M
          # words/s unbound against 7.07 M bound, means of 4 interleaved runs). Threads:
          # unbound, or a rank's threads would share one core.
          bind=core; [ "$threads" -gt 1 ] && bind=none
          wall=$(timed "$run.log" mpirun -np "$np" --oversubscribe --bind-to "$bind" --mca mpi_yield_when_idle 1 \
            "$build/loom" train examples/word2vec-wiki17m.toml --set "corpus.paths=[\"$work/wiki17m.txt\"]" \
            --set "run.dir=$run" --set run.threads="$threads" --set word2vec.threads="$threads" \
            --set word2vec.arch="$arch" --set word2vec.epochs="$epochs" --set checkpoint.every_minutes=0 \
            --set checkpoint.at_end=false --set progress.interval_s=60 --set eval.analogy= --set eval.similarity= \
            --set run.seed="$seed")
          grep -E "words/s in training" "$run.log" | sed 's/^.*final loss/  final loss/' >&2
          score "loom-$layout" "$arch" "$wall" "$run/vectors.bin" "$seed"
        done
        done ;;
      fasttext)
        echo "== fasttext $arch 2 threads; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
        wall=$(timed "$work/fasttext-$arch.log" fasttext "$arch" -input "$work/wiki17m.txt" \
          -output "$work/fasttext-$arch" -dim 100 -ws 5 -neg 5 -t 1e-4 -epoch "$epochs" -minCount 5 \
          -minn 0 -maxn 0 -thread 2 -verbose 0)
        score fasttext "$arch" "$wall" "$work/fasttext-$arch.vec" ;;
      gensim)
        echo "== gensim $arch 2 workers; load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
        wall=$(timed "$work/gensim-$arch.log" /usr/bin/python3 -c "
import sys
from gensim.models import Word2Vec
from gensim.models.word2vec import LineSentence
m = Word2Vec(LineSentence(sys.argv[1]), vector_size=100, window=5, negative=5, sample=1e-4, epochs=$epochs,
             min_count=5, sg=1 - $cbow, workers=2)
m.wv.save_word2vec_format(sys.argv[2], binary=True)" "$work/wiki17m.txt" "$work/gensim-$arch.bin")
        score gensim "$arch" "$wall" "$work/gensim-$arch.bin" ;;
    esac
  done
done

python3 "$here/bench/word2vec_score.py" --summary "$results"
