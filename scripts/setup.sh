#!/usr/bin/env bash
# Installs the Debian packages loom needs (only those missing), configures and builds.
# Idempotent: a second run with nothing changed checks the packages and runs an empty
# incremental build (a few seconds).
#
#   scripts/setup.sh [--no-tests]        build dir: $LOOM_BUILD_DIR (default: build)
#
# Environment: LOOM_BUILD_TYPE (Release), LOOM_CUDA (AUTO), CI (set: warnings are errors).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${LOOM_BUILD_DIR:-build}
BUILD_TYPE=${LOOM_BUILD_TYPE:-Release}
CUDA=${LOOM_CUDA:-AUTO}
TESTS=ON
[[ "${1:-}" == "--no-tests" ]] && TESTS=OFF
WERROR=OFF
[[ -n "${CI:-}" ]] && WERROR=ON

phase_start=$(date +%s.%N)
phase() {  # phase NAME: prints how long the previous phase took
  local now; now=$(date +%s.%N)
  awk -v a="$phase_start" -v b="$now" -v n="$1" 'BEGIN { printf "[setup] %-10s %6.1f s\n", n, b - a }'
  phase_start=$now
}

# ---- packages ----------------------------------------------------------------------
mapfile -t wanted < <(grep -v '^\s*#' scripts/debian-packages.txt | sed '/^\s*$/d')
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "[setup] installing: ${missing[*]}"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
phase packages

# ---- python reference environment ---------------------------------------------------
# .venv: Debian's python3 with its packages (numpy, h5py, torch where installed) plus the
# pinned test references in scripts/python-requirements.txt (Hugging Face tokenizers,
# transformers, safetensors). Rebuilt only when that file changes. A failure (no PyPI) is
# a warning here; the tests that need it then fail under CI and skip elsewhere, saying why.
VENV=.venv
req_sum=$(sha256sum scripts/python-requirements.txt | cut -d' ' -f1)
if [[ ! -x "$VENV/bin/python" || "$(cat "$VENV/.loom-requirements" 2>/dev/null)" != "$req_sum" ]]; then
  echo "[setup] python environment: $VENV (scripts/python-requirements.txt)"
  if /usr/bin/python3 -m venv --system-site-packages "$VENV" &&
     "$VENV/bin/python" -m pip install -q --disable-pip-version-check \
        -r scripts/python-requirements.txt >"$VENV/pip.log" 2>&1; then
    echo "$req_sum" >"$VENV/.loom-requirements"
  else
    echo "[setup] WARNING: could not install scripts/python-requirements.txt into $VENV" \
         "(see $VENV/pip.log); tests comparing with Hugging Face will not run"
  fi
fi
phase python

# ---- configure ----------------------------------------------------------------------
want="type=$BUILD_TYPE cuda=$CUDA werror=$WERROR tests=$TESTS"
stamp="$BUILD_DIR/.loom-configure"
if [[ ! -f "$BUILD_DIR/build.ninja" || "$(cat "$stamp" 2>/dev/null)" != "$want" ]]; then
  mkdir -p "$BUILD_DIR"
  cmake -S "$ROOT" -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE="$BUILD_TYPE" \
        -DLOOM_CUDA="$CUDA" -DLOOM_WERROR="$WERROR" -DLOOM_BUILD_TESTS="$TESTS" \
        -DLOOM_BUILD_BENCH="$TESTS" >"$BUILD_DIR/configure.log" 2>&1 \
    || { cat "$BUILD_DIR/configure.log"; exit 1; }
  grep -E '^-- (loom|LOOM_CUDA)' "$BUILD_DIR/configure.log" || true
  echo "$want" >"$stamp"
fi
phase configure

# ---- build --------------------------------------------------------------------------
set +e
ninja -C "$BUILD_DIR" -j "$(nproc)" >"$BUILD_DIR/build.log" 2>&1
rc=$?
set -e
grep -vE '^\[[0-9]+/[0-9]+\] (Building|Linking|Re-checking)|^ninja: (Entering|no work)' "$BUILD_DIR/build.log" || true
[[ $rc -eq 0 ]] || { echo "[setup] build failed (full log: $BUILD_DIR/build.log)"; exit $rc; }
phase build
