#!/usr/bin/env python3
"""bench/word2vec.sh's scoring: one tab-separated result line per run from `loom eval`'s
output, and the summary table with the ratios to issue 7's targets and to the other tools
of the same run.

  word2vec_score.py NAME ARCH WALL_S EPOCHS ANALOGY_OUT SIMILARITY_OUT [SEED]  -> one line
  word2vec_score.py --summary RESULTS.tsv                                       -> the table

With several seeds (bench/word2vec.sh SEEDS=...) every loom run is listed, then each layout's
means over the seeds, and the ratios are taken between the means.
"""
import re
import sys

WORDS = 17.15e6  # wiki17m's words (../shared/data/README.md)
# Issue 7's targets: analogy >= the best other tool, words/s >= 2x the original C tool.
TARGET_ANALOGY = {"skipgram": 37.5, "cbow": 35.4}
TARGET_RATE = {"skipgram": 570e3, "cbow": 1.85e6}


def line(name, arch, wall, epochs, analogy_out, sim_out, seed="-"):
    text = open(analogy_out).read()
    pct = {}
    for key in ("semantic", "syntactic", "total"):
        m = re.search(r"^%s +([0-9.]+) %%" % key, text, re.M)
        pct[key] = float(m.group(1)) if m else float("nan")
    m = re.search(r"rho ([0-9.-]+)", open(sim_out).read())
    rho = float(m.group(1)) if m else float("nan")
    rate = WORDS * int(epochs) / float(wall)
    print("\t".join([name, arch, wall, f"{rate:.0f}", f"{pct['total']:.2f}", f"{pct['semantic']:.2f}",
                     f"{pct['syntactic']:.2f}", f"{rho:.4f}", seed]))


def mean_rows(rows):
    """One row per (tool, arch): the mean of every figure over the tool's seeds."""
    out = []
    for key in dict.fromkeys((r[0], r[1]) for r in rows):
        group = [r for r in rows if (r[0], r[1]) == key]
        mean = lambda i, fmt: fmt % (sum(float(r[i]) for r in group) / len(group))
        out.append([key[0], key[1], mean(2, "%.1f"), mean(3, "%.0f"), mean(4, "%.2f"), mean(5, "%.2f"),
                    mean(6, "%.2f"), mean(7, "%.4f"), "mean of %d" % len(group) if len(group) > 1 else group[0][8]])
    return out


def summary(path):
    rows = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
    rows = [r + ["-"] * (9 - len(r)) for r in rows]   # results from before the seed column
    header = "%-14s %-9s %9s %8s %12s %26s %7s  %s" % ("tool", "arch", "seed", "wall s", "words/s",
                                                       "analogy total (sem / syn)", "rho", "ratios")
    means = mean_rows(rows)
    if len(means) < len(rows):
        print("\nevery run")
        print(header)
        for name, arch, wall, rate, total, sem, syn, rho, seed in rows:
            print("%-14s %-9s %9s %8s %12s %26s %7s" % (name, arch, seed, wall, "%.0f k" % (float(rate) / 1e3),
                                                       "%s %% (%s / %s)" % (total, sem, syn), rho))
        print("\nmeans over the seeds")
    print("\n" + header if len(means) == len(rows) else header)
    for name, arch, wall, rate, total, sem, syn, rho, seed in means:
        others = [r for r in means if r[1] == arch and not r[0].startswith("loom")]
        ratio = ""
        if name.startswith("loom"):
            ratio = "rate %.2fx target, analogy %+.2f vs target" % (float(rate) / TARGET_RATE[arch],
                                                                 float(total) - TARGET_ANALOGY[arch])
            for o in others:
                ratio += "; %.2fx %s" % (float(rate) / float(o[3]), o[0])
        print("%-14s %-9s %9s %8s %12s %26s %7s  %s" % (name, arch, seed, wall, "%.0f k" % (float(rate) / 1e3),
                                                       "%s %% (%s / %s)" % (total, sem, syn), rho, ratio))
    for arch in sorted({r[1] for r in rows}):
        one = [r for r in means if r[1] == arch and r[0] == "loom-1x1"]
        two = [r for r in means if r[1] == arch and r[0] == "loom-2x1"]
        if one and two:
            print("%s scaling: 2 ranks x 1 thread = %.2fx 1 rank x 1 thread (target >= 1.8), analogy %s vs %s (%s)" %
                  (arch, float(one[0][2]) / float(two[0][2]), two[0][4], one[0][4], two[0][8]))
        pairs = [(a, b) for a in rows for b in rows if a[1] == b[1] == arch and a[0] == "loom-1x1"
                 and b[0] == "loom-2x1" and a[8] == b[8] and a[8] != "-"]
        if len(pairs) > 1:
            print("  per seed: " + ", ".join("%s %.2fx (%s vs %s %%)" % (a[8], float(a[2]) / float(b[2]), b[4], a[4])
                                            for a, b in pairs))


if __name__ == "__main__":
    if sys.argv[1] == "--summary":
        summary(sys.argv[2])
    else:
        line(*sys.argv[1:8])
