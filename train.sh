#!/usr/bin/env bash
# Train one stage or the whole OmniPT chain over ms-swift.
#   bash train.sh <stage|all> [--dry-run] [--force] [--trust-remote-code] [key=value ...]
# Stages are configs/stages/<stage>.yaml (stage1_format_grpo, stage2_midtrain, stage3_sft,
# stage4_iou_grpo, vptracker_sft). Multi-GPU / multi-node: set NPROC_PER_NODE, NNODES, NODE_RANK,
# MASTER_ADDR, MASTER_PORT and run the same command on every node; ms-swift's launcher starts
# torchrun. Example: NNODES=3 NODE_RANK=0 MASTER_ADDR=10.0.0.1 NPROC_PER_NODE=8 bash train.sh all
# Without NPROC_PER_NODE a single node runs one process per visible GPU (the plan says so).
# Every setting, the data and the model folder are checked before anything starts: exit 2 with one
# line per problem. A model folder whose configs name custom code (auto_map) is refused unless
# --trust-remote-code is given (recorded in the stage manifest). Exit 1: a stage command failed
# (rerun the same command to resume from the last checkpoint).
set -euo pipefail
if [ $# -lt 1 ]; then
  echo "usage: bash train.sh <stage|all> [--dry-run] [--force] [--trust-remote-code] [key=value ...]" >&2
  exit 2
fi
cd "$(dirname "$0")"
stage="$1"; shift
PYTHON="${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}"
exec "$PYTHON" -m vptracker train --stage "$stage" "$@"
