#!/usr/bin/env bash
# Builds the training data from configs/data/: the released VPTracker recipe and the four OmniPT
# stage mixtures, each as sharded ms-swift JSONL plus card.json (counts per task and source, the
# config used, the seed). The same seed writes byte-identical files.
#
#   bash data_preparation.sh [vptracker|omnipt|all] [key=value ...]
#
# DATA_ROOT (default: data) is the folder holding TNL2K/, TNLLT/, LaSOT/, DanceTrack/, MOT17/,
# Refer-KITTI-V2/, CRTrack/, BenSMOT/, SYNTH-PEDES/; OUT_ROOT (default: data/prepared) receives the
# outputs. Extra key=value arguments override every config (e.g. seed=1, roots.tnl2k=/fast/TNL2K,
# jobs.vptracker_sot.samples.train=100000). Every setting and dataset root is checked before anything
# is read (exit 2, one line per problem). Each output folder must be new, empty or an earlier output:
# shards are written aside and moved in at the end, the card last, and shards from an earlier run
# that the new card does not list are removed, so a killed run or a smaller rerun never mixes data.
set -euo pipefail
cd "$(dirname "$0")"

WHAT="${1:-all}"
if [[ $# -gt 0 ]]; then shift; fi
DATA_ROOT="${DATA_ROOT:-data}"
OUT_ROOT="${OUT_ROOT:-data/prepared}"
PY="${PYTHON:-.venv/bin/python}"
[[ -x "$PY" ]] || PY=python

ROOTS=(
  "roots.tnl2k=$DATA_ROOT/TNL2K" "roots.tnllt=$DATA_ROOT/TNLLT" "roots.lasot=$DATA_ROOT/LaSOT"
  "roots.dancetrack=$DATA_ROOT/DanceTrack" "roots.mot17=$DATA_ROOT/MOT17"
  "roots.refer_kitti_v2=$DATA_ROOT/Refer-KITTI-V2" "roots.crtrack=$DATA_ROOT/CRTrack"
  "roots.bensmot=$DATA_ROOT/BenSMOT" "roots.synth_pedes=$DATA_ROOT/SYNTH-PEDES"
)

prepare() {  # prepare <config name> <output folder> [key=value ...]
  local config="$1" out="$2"
  shift 2
  echo "== $config -> $out"
  "$PY" -m vptracker prepare --config "configs/data/$config.yaml" "${ROOTS[@]}" "out=$out" "$@"
}

case "$WHAT" in
  vptracker|all) prepare vptracker "$OUT_ROOT/vptracker" "$@" ;;&
  omnipt|all)
    prepare omnipt_stage1_grpo_format "$OUT_ROOT/omnipt/stage1_grpo_format" "$@"
    prepare omnipt_stage2_midtrain "$OUT_ROOT/omnipt/stage2_midtrain" "$@"
    prepare omnipt_stage3_sft "$OUT_ROOT/omnipt/stage3_sft" "$@"
    prepare omnipt_stage4_grpo_iou "$OUT_ROOT/omnipt/stage4_grpo_iou" "$@"
    ;;
  vptracker) ;;
  *) echo "usage: bash data_preparation.sh [vptracker|omnipt|all] [key=value ...]" >&2; exit 2 ;;
esac
