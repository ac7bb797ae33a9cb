#!/usr/bin/env bash
# One `vptracker infer` worker per GPU on every node, then one merge.
#
#   NNODES=2 NODE_RANK=0 NPROC_PER_NODE=8 bash infer.sh --config configs/infer/vptracker_sot_vllm.yaml \
#       model=DIR dataset=tnl2k root=DIR split=test out=outputs/tnl2k
#
# Worker r of node k runs shard (k * NPROC_PER_NODE + r) / (NNODES * NPROC_PER_NODE) on GPU r; shards
# are longest-first and balanced by frame count. Every node must see the same output directory
# (a shared file system). Node 0 waits for every shard's marker, then merges responses.jsonl (and
# captions.json). Restarting the same command resumes: finished sequences are skipped.
# DRY_RUN=1 prints the commands instead of running them.
set -euo pipefail
cd "$(dirname "$0")"

NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
if [ -z "${NPROC_PER_NODE:-}" ]; then
  if command -v nvidia-smi >/dev/null 2>&1; then
    NPROC_PER_NODE=$(nvidia-smi --list-gpus | wc -l)
  fi
  NPROC_PER_NODE=${NPROC_PER_NODE:-1}
  [ "$NPROC_PER_NODE" -ge 1 ] || NPROC_PER_NODE=1
fi
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}
WAIT_TIMEOUT_S=${WAIT_TIMEOUT_S:-86400}

# The output directory, as the worker resolves it (config file, flags and overrides).
OUT=$("$PYTHON" -c 'import sys
from vptracker.cli import build_parser
from vptracker.commands.infer import resolve_config
args = build_parser().parse_args(["infer", *sys.argv[1:]])
print(resolve_config(args).get("out") or "")' "$@")
if [ -z "$OUT" ]; then echo "infer.sh: no output directory (pass --out DIR or out=DIR)" >&2; exit 2; fi

WORLD=$((NNODES * NPROC_PER_NODE))
run() { if [ "${DRY_RUN:-0}" = 1 ]; then echo "$*"; else "$@"; fi; }

pids=()
for ((r = 0; r < NPROC_PER_NODE; r++)); do
  shard=$((NODE_RANK * NPROC_PER_NODE + r))
  if [ "${DRY_RUN:-0}" = 1 ]; then
    echo "CUDA_VISIBLE_DEVICES=$r $PYTHON -m vptracker infer --shard $shard/$WORLD $*"
  else
    CUDA_VISIBLE_DEVICES=$r "$PYTHON" -m vptracker infer --shard "$shard/$WORLD" "$@" \
      > >(sed -u "s/^/[shard $shard] /") 2> >(sed -u "s/^/[shard $shard] /" >&2) &
    pids+=($!)
  fi
done
status=0
for pid in "${pids[@]}"; do wait "$pid" || status=1; done
if [ "$status" != 0 ]; then echo "infer.sh: a worker failed; rerun the same command to resume" >&2; exit 1; fi

if [ "$NODE_RANK" = 0 ]; then
  if [ "${DRY_RUN:-0}" != 1 ]; then
    waited=0
    while [ "$(ls "$OUT/.shards/"*"-of-$WORLD.done" 2>/dev/null | wc -l)" -lt "$WORLD" ]; do
      if [ "$waited" -ge "$WAIT_TIMEOUT_S" ]; then echo "infer.sh: shards still missing after ${waited}s" >&2; exit 1; fi
      sleep 10; waited=$((waited + 10))
    done
  fi
  run "$PYTHON" -m vptracker infer --out "$OUT" --merge-only
fi
