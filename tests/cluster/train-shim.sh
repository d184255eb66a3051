#!/bin/bash
# Stands in for `loom` in the example job scripts while a test runs them:
#   train-shim.sh train ARGS_FILE [loom train options...]
# runs $LOOM_TRAIN_TOOL (tests/fault/train_tool: the real Trainer, Session, checkpoints and
# signals on a small regression model) with the model options in ARGS_FILE, then the rest.
set -euo pipefail
[ "${1:-}" = train ] || { echo "train-shim: expected 'train CONFIG ...', got '$*'" >&2; exit 2; }
args_file=$2; shift 2
read -r -a model_args < "$args_file"
exec "${LOOM_TRAIN_TOOL:?LOOM_TRAIN_TOOL is not set}" "${model_args[@]}" "$@"
