#!/usr/bin/env bash
# One `vptracker infer` worker per GPU group on every node, then one merge.
#
#   NNODES=2 NODE_RANK=0 bash infer.sh --config configs/infer/vptracker_sot_vllm.yaml \
#       model=DIR dataset=tnl2k root=DIR split=test out=outputs/tnl2k
#
# Each worker gets GPUS_PER_WORKER GPUs: by default the engine's tensor-parallel degree
# (`engine_kwargs.tensor_parallel_size` in the config, 1 when unset), so a 72B model on vLLM with
# tensor_parallel_size=4 runs two workers on an 8-GPU node. For the transformers backend set
# GPUS_PER_WORKER=N: swift spreads a model over every GPU its worker sees. The GPUs are the ones this job may use:
# an existing CUDA_VISIBLE_DEVICES (a scheduler's allocation) is honoured and split, otherwise every
# GPU nvidia-smi lists. NPROC_PER_NODE (workers per node) defaults to visible GPUs / GPUS_PER_WORKER;
# on a machine without GPUs it defaults to 1 and workers run on the CPU.
# Worker r of node k runs shard (k * NPROC_PER_NODE + r) / (NNODES * NPROC_PER_NODE); shards are
# longest-first and balanced by frame count. Every node must see the same output directory (a shared
# file system). Node 0 waits for every shard's marker of this run (.shards/<run id>/), then merges
# responses.jsonl (and captions.json). Restarting the same command resumes: finished sequences are skipped.
# DRY_RUN=1 prints the commands instead of running them.
set -euo pipefail
cd "$(dirname "$0")"

NNODES=${NNODES:-1}
NODE_RANK=${NODE_RANK:-0}
PYTHON=${PYTHON:-$( [ -x .venv/bin/python ] && echo .venv/bin/python || echo python )}
WAIT_TIMEOUT_S=${WAIT_TIMEOUT_S:-86400}

# The output directory, tensor-parallel degree and run id, as the worker resolves them; bad settings
# stop here with the worker's one-line message and exit 2.
RESOLVED=$(DRY_RUN=${DRY_RUN:-0} "$PYTHON" -m vptracker infer --describe "$@") || exit $?
IFS=$'\t' read -r OUT TP RUN_ID <<< "$RESOLVED"
if [ -z "$OUT" ]; then echo "infer.sh: no output directory (pass --out DIR or out=DIR)" >&2; exit 2; fi
GPUS_PER_WORKER=${GPUS_PER_WORKER:-$TP}

# The GPUs this job may use.
GPUS=()
if [ -n "${CUDA_VISIBLE_DEVICES+x}" ]; then
  IFS=',' read -r -a GPUS <<< "$CUDA_VISIBLE_DEVICES"
elif command -v nvidia-smi >/dev/null 2>&1; then
  n=$(nvidia-smi --list-gpus | wc -l)
  for ((g = 0; g < n; g++)); do GPUS+=("$g"); done
fi
if [ "${#GPUS[@]}" -gt 0 ]; then
  NPROC_PER_NODE=${NPROC_PER_NODE:-$((${#GPUS[@]} / GPUS_PER_WORKER))}
  if [ "$NPROC_PER_NODE" -lt 1 ] || [ $((NPROC_PER_NODE * GPUS_PER_WORKER)) -gt "${#GPUS[@]}" ]; then
    echo "infer.sh: $NPROC_PER_NODE workers x $GPUS_PER_WORKER GPUs each need more than the ${#GPUS[@]} visible" \
         "GPUs (${GPUS[*]}); lower NPROC_PER_NODE or the tensor-parallel degree" >&2
    exit 2
  fi
else
  NPROC_PER_NODE=${NPROC_PER_NODE:-1}
fi

WORLD=$((NNODES * NPROC_PER_NODE))
run() { if [ "${DRY_RUN:-0}" = 1 ]; then echo "$*"; else "$@"; fi; }

pids=()
for ((r = 0; r < NPROC_PER_NODE; r++)); do
  shard=$((NODE_RANK * NPROC_PER_NODE + r))
  devices=()
  if [ "${#GPUS[@]}" -gt 0 ]; then
    devices=(env "CUDA_VISIBLE_DEVICES=$(IFS=,; echo "${GPUS[*]:$((r * GPUS_PER_WORKER)):$GPUS_PER_WORKER}")")
  fi
  if [ "${DRY_RUN:-0}" = 1 ]; then
    echo "${devices[*]:1} $PYTHON -m vptracker infer --shard $shard/$WORLD $*" | sed 's/^ //'
  else
    "${devices[@]}" "$PYTHON" -m vptracker infer --shard "$shard/$WORLD" "$@" \
      > >(sed -u "s/^/[shard $shard] /") 2> >(sed -u "s/^/[shard $shard] /" >&2) &
    pids+=($!)
  fi
done
status=0
for pid in "${pids[@]}"; do
  wait "$pid" && continue
  rc=$?
  # exit 2 (bad input, already named by the worker) wins over a failed run
  if [ "$rc" = 2 ] || [ "$status" = 0 ]; then status=$rc; fi
done
if [ "$status" = 2 ]; then exit 2; fi
if [ "$status" != 0 ]; then echo "infer.sh: a worker failed; rerun the same command to resume" >&2; exit 1; fi

if [ "$NODE_RANK" = 0 ]; then
  if [ "${DRY_RUN:-0}" != 1 ]; then
    waited=0
    while [ "$(ls "$OUT/.shards/$RUN_ID/"*"-of-$WORLD.done" 2>/dev/null | wc -l)" -lt "$WORLD" ]; do
      if [ "$waited" -ge "$WAIT_TIMEOUT_S" ]; then echo "infer.sh: shards still missing after ${waited}s" >&2; exit 1; fi
      sleep 10; waited=$((waited + 10))
    done
  fi
  run "$PYTHON" -m vptracker infer --out "$OUT" --merge-only
fi
