#!/usr/bin/env python3
"""Runs the README's fenced commands, so that the README cannot drift from the program.

Note [README commands under test]
Every ```sh and ```python fence of README.md is preceded by one HTML comment (invisible on
GitHub) that says what this test does with it:
  <!-- readme-test: run -->                 run each command of the block, in order
  <!-- readme-test: run --set K=V ... -->   the same, with these overrides added to every
                                            `loom train` of the block: the block shows the
                                            full run, the test trains a small one
  <!-- readme-test: data -->                run (with optional --set ... as above) when
                                            ../shared/data exists; without it the block is
                                            skipped and listed as skipped (a clone without
                                            the data: by design, CI included)
  <!-- readme-test: skip REASON -->         not run; REASON says why (it installs packages,
                                            needs SLURM or several hosts, runs for hours,
                                            shows a placeholder such as PORT)
A fence without a comment fails the test: a new command must be sorted into one of these.
Fences without a language (listings, output) are not commands and are not run.

The Python commands (the gensim recipe, the CRC check) need numpy, gensim and h5py: the
first of /usr/bin/python3 (Debian's python3-gensim and python3-h5py, as CI installs them)
and the python3 on PATH that has them is put first on PATH as `python3`. Without one, those
commands are skipped and listed, and under CI (CI set, not "false" or "0") that fails.
Outside CI such a skip (a missing environment, not a block skipped by design) makes the
test print tests/support/test_support.h's LOOM-ENVIRONMENT-SKIP marker when nothing failed,
so that ctest counts readme_commands as skipped, not passed (SKIP_REGULAR_EXPRESSION in
tests/readme/readme.cmake; Note [Skips that fail under CI]).

The commands run as a user types them, from the repository root of a scratch copy: the
blocks share one working directory (W/repo, holding links to the build's `loom` as
build/loom, to examples/ and scripts/), so a later block finds what an earlier one trained;
`loom` is on PATH (as after `cmake --install`); ../shared is the real one when it exists.
A command fails the test when it exits non-zero; the failure names the README line.

The job scripts of examples/slurm, which the README points to, are checked too: each
default CONFIG exists and `loom config` accepts it (so its train.model is a model loom has),
and a script asks for GPUs exactly when its config trains on them (run.device = "cuda"),
with one rank per GPU (--ntasks-per-node = --gpus-per-node).

The planted-corpus figures the README states for `examples/glove.toml` (final loss and
analogy accuracy at 1, 2 and 3 ranks) are measured again: the example runs at each world
size and must end within 1 % of the stated loss and 0.6 points (3 of 528 questions) of the
stated accuracy. With threads = 1 the run depends only on the seed and the world size, so
on the host class the figures came from it ends bit for bit at them; the tolerance leaves
room for another CPU's floating-point code paths, not for a change of the program.

usage: readme_test.py REPO_ROOT LOOM_BINARY
"""
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

MARK = re.compile(r"^<!--\s*readme-test:\s*(run|data|skip)\b(.*?)-->\s*$")


def blocks(readme):
    """(line number of the fence, language, marker kind, marker argument, [(line, command)])."""
    lines = open(readme, encoding="utf-8").read().split("\n")
    out, i = [], 0
    while i < len(lines):
        m = re.match(r"^```(\w*)\s*$", lines[i])
        if not m:
            i += 1
            continue
        lang, start = m.group(1), i
        j = i + 1
        while j < len(lines) and not lines[j].startswith("```"):
            j += 1
        body = lines[start + 1:j]
        i = j + 1
        if lang not in ("sh", "python"):
            continue
        mark = MARK.match(lines[start - 1]) if start > 0 else None
        kind, arg = (mark.group(1), mark.group(2).strip()) if mark else (None, "")
        commands = []
        if lang == "python":
            commands.append((start + 2, "\n".join(body)))
        else:
            pending, first = "", None
            for n, text in enumerate(body, start + 2):
                if first is None:
                    first = n
                if text.rstrip().endswith("\\"):
                    pending += text.rstrip()[:-1] + " "
                    continue
                command = (pending + text).strip()
                pending = ""
                if command and not command.startswith("#"):
                    commands.append((first, command))
                first = None
        out.append((start + 1, lang, kind, arg, commands))
    return out


def with_overrides(command, sets):
    """Adds the marker's --set overrides to a `loom train` command (before a trailing comment)."""
    if not sets or not re.search(r"(^|[ /])loom train ", command):
        return command
    code, hashmark, comment = command.partition(" #")
    return code.rstrip() + " " + sets + ((" #" + comment) if hashmark else "")


PYTHON_MODULES = "numpy, gensim, h5py"


def python_with_modules():
    for candidate in ("/usr/bin/python3", shutil.which("python3")):
        if candidate and os.path.exists(candidate) and subprocess.run(
                [candidate, "-c", "import " + PYTHON_MODULES], stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL).returncode == 0:
            return candidate
    return None


def under_ci():
    return os.environ.get("CI", "") not in ("", "false", "0")


def needs_python(lang, command):
    return lang == "python" or re.search(r"(^|[\s;|&])python3\b", command) is not None


# tests/support/test_support.h's kEnvironmentSkipMarker, which readme.cmake's
# SKIP_REGULAR_EXPRESSION matches.
ENVIRONMENT_SKIP_MARKER = "LOOM-ENVIRONMENT-SKIP"


def finish(ran, seconds, skipped, environment_skips, failures):
    """Prints the summary; returns the exit status. Skips for a missing environment count
    as skipped (the marker) when nothing failed; under CI main() made them failures."""
    print("\n%d commands run in %.0f s; %d blocks not run:" % (ran, seconds, len(skipped) + len(environment_skips)))
    for s in skipped + environment_skips:
        print("  skipped " + s)
    if failures:
        print("\nFAILED:")
        for f in failures:
            print("  " + f)
        return 1
    if environment_skips:
        print("\n%s: %d command(s) not run for a missing environment (listed above)"
              % (ENVIRONMENT_SKIP_MARKER, len(environment_skips)))
    return 0


def check_planted_figures(readme_text, root, env):
    """Failures (strings) where examples/glove.toml no longer ends at the README's figures."""
    text = " ".join(readme_text.split())
    m = re.search(r"ends with `epoch (\d+)/\d+: loss ([0-9.]+), analogies ([0-9.]+) %` on one rank, "
                  r"([0-9.]+) / ([0-9.]+) % on 2 and ([0-9.]+) / ([0-9.]+) % on 3", text)
    if not m:
        return ["README.md: the planted figures of examples/glove.toml (`ends with `epoch N/N: loss L, analogies "
                "A %` on one rank, L2 / A2 % on 2 and L3 / A3 % on 3`) are not stated where this test looks"]
    epochs = m.group(1)
    stated = {1: (float(m.group(2)), float(m.group(3))), 2: (float(m.group(4)), float(m.group(5))),
              3: (float(m.group(6)), float(m.group(7)))}
    failures = []
    for np_, (loss, accuracy) in sorted(stated.items()):
        command = ["build/loom", "train", "examples/glove.toml", "--set", "run.dir=runs/figures-np%d" % np_]
        if np_ > 1:
            command = ["mpirun", "-np", str(np_)] + command
        r = subprocess.run(command, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600)
        out = r.stdout.decode("utf-8", "replace")
        got = re.search(r"\[glove\] epoch %s/%s: loss ([0-9.]+), analogies ([0-9.]+) %%" % (epochs, epochs), out)
        if r.returncode != 0 or not got:
            failures.append("examples/glove.toml at %d rank(s): exit %d, no 'epoch %s/%s' line:\n%s"
                            % (np_, r.returncode, epochs, epochs, out[-2000:]))
            continue
        measured = (float(got.group(1)), float(got.group(2)))
        print("planted figures, %d rank(s): README %.5f / %.2f %%, measured %.5f / %.2f %%"
              % (np_, loss, accuracy, measured[0], measured[1]))
        if abs(measured[0] - loss) > 0.01 * loss or abs(measured[1] - accuracy) > 0.6:
            failures.append("README.md: examples/glove.toml at %d rank(s) is stated to end at loss %.5f, "
                            "analogies %.2f %%; it ends at %.5f / %.2f %%: measure again and update the README"
                            % (np_, loss, accuracy, measured[0], measured[1]))
    return failures


def main():
    repo, loom = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    # ../shared beside the repository, as the README says; LOOM_SHARED_DIR names another
    # (a git worktree lives one directory deeper than the checkout that has ../shared).
    shared = os.environ.get("LOOM_SHARED_DIR") or os.path.join(os.path.dirname(repo), "shared")
    data = os.path.join(shared, "data")
    have_data = os.path.isdir(data)
    work = tempfile.mkdtemp(prefix="loom-readme-")
    root = os.path.join(work, "repo")
    os.makedirs(os.path.join(root, "build"))
    os.symlink(loom, os.path.join(root, "build", "loom"))
    for d in ("examples", "scripts", "bench"):
        os.symlink(os.path.join(repo, d), os.path.join(root, d))
    if os.path.isdir(shared):
        os.symlink(os.path.abspath(shared), os.path.join(work, "shared"))
    bindir = os.path.join(work, "bin")
    os.makedirs(bindir)
    os.symlink(loom, os.path.join(bindir, "loom"))
    python = python_with_modules()
    if python:
        os.symlink(python, os.path.join(bindir, "python3"))
    env = dict(os.environ)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env.update({"OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1",
                "HDF5_USE_FILE_LOCKING": "FALSE", "OMPI_MCA_rmaps_base_oversubscribe": "1",
                "OMPI_MCA_hwloc_base_binding_policy": "none", "OMPI_MCA_mpi_yield_when_idle": "1"})
    failures, skipped, environment_skips, ran = [], [], [], 0
    t0 = time.time()
    for fence, lang, kind, arg, commands in blocks(os.path.join(repo, "README.md")):
        where = "README.md:%d" % fence
        if kind is None:
            failures.append("%s: a ```%s fence without a <!-- readme-test: run|data|skip ... --> comment "
                            "on the line before it (Note [README commands under test])" % (where, lang))
            continue
        if kind == "skip":
            if not arg:
                failures.append("%s: readme-test: skip without a reason" % where)
            skipped.append("%s: %s" % (where, arg))
            continue
        if kind == "data" and not have_data:
            skipped.append("%s: needs %s, which this checkout lacks (SKIPPED, as designed)" % (where, data))
            continue
        for line, command in commands:
            command = with_overrides(command, arg)
            if needs_python(lang, command) and python is None:
                why = "README.md:%d: needs a python3 with %s, which this machine lacks" % (line, PYTHON_MODULES)
                if under_ci():
                    failures.append(why + " (required under CI)")
                else:
                    environment_skips.append(why + " (SKIPPED; CI would fail)")
                continue
            argv = [os.path.join(bindir, "python3"), "-c", command] if lang == "python" else ["bash", "-o", "pipefail", "-c", command]
            start = time.time()
            r = subprocess.run(argv, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               timeout=600)
            ran += 1
            shown = command if lang == "sh" else "(python block)"
            print("README.md:%d (%.1f s, exit %d): %s" % (line, time.time() - start, r.returncode, shown))
            if r.returncode != 0:
                out = r.stdout.decode("utf-8", "replace")
                failures.append("README.md:%d: exit %d: %s\n%s" % (line, r.returncode, shown, out[-3000:]))
    failures += check_planted_figures(open(os.path.join(repo, "README.md"), encoding="utf-8").read(), root, env)
    slurm = os.path.join(repo, "examples", "slurm")
    for name in sorted(os.listdir(slurm)):
        text = open(os.path.join(slurm, name), encoding="utf-8").read()
        m = re.search(r"^CONFIG=\$\{LOOM_CONFIG:-'?([^'}]+)'?\}", text, re.M)
        where = "examples/slurm/" + name
        if not m:
            failures.append(where + ": no CONFIG=${LOOM_CONFIG:-...} line")
            continue
        config = os.path.join(repo, m.group(1))
        r = subprocess.run([loom, "config", config], cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        print("%s: CONFIG %s, loom config exit %d" % (where, m.group(1), r.returncode))
        if r.returncode != 0:
            failures.append("%s: loom config %s exits %d:\n%s" % (where, m.group(1), r.returncode,
                                                                 r.stdout.decode("utf-8", "replace")[-2000:]))
        resolved = r.stdout.decode("utf-8", "replace")
        on_gpu = re.search(r'^device = "cuda"', resolved, re.M) is not None
        gpus = re.search(r"^#SBATCH --gpus-per-node=(\d+)", text, re.M)
        if re.search(r"^#SBATCH --(gpus|gres)", text, re.M) and not on_gpu:
            failures.append(where + ": asks for GPUs, but its config trains on the CPU (run.device)")
        if on_gpu and not gpus:
            failures.append(where + ": its config trains on GPUs (run.device = cuda) but it asks for none")
        tasks = re.search(r"^#SBATCH --ntasks-per-node=(\d+)", text, re.M)
        if gpus and (not tasks or tasks.group(1) != gpus.group(1)):
            failures.append(where + ": one rank per GPU: --ntasks-per-node must equal --gpus-per-node")
    status = finish(ran, time.time() - t0, skipped, environment_skips, failures)
    if status == 0:
        shutil.rmtree(work, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
