#!/usr/bin/env bash
# One-command setup: .venv, torch first, then the pinned stack under a constraints file.
# Safe to run twice. GPU users: install their CUDA torch, then `pip install -e .[gpu]`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
VPY=.venv/bin/python
$VPY -m pip install -q --no-warn-script-location --upgrade pip
if ! $VPY -c "import torch,sys; sys.exit(0 if torch.__version__.startswith('2.13.0') else 1)" 2>/dev/null; then
  $VPY -m pip install -q --no-warn-script-location "torch==2.13.0"
fi
$VPY -m pip install -q --no-warn-script-location -c scripts/constraints.txt -e ".[dev]"
# The registry torchvision is CUDA-linked; on a CPU-only torch its ops must be declared before import.
$VPY -m vptracker.torchvision_hook install
if ! command -v java >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openjdk-17-jre-headless >/dev/null) \
      || echo "setup: could not install Java; METEOR and the PTB tokenizer (caption metrics) need Java."
  else
    echo "setup: Java not found and cannot be installed here; METEOR and the PTB tokenizer (caption metrics) need Java."
  fi
fi
$VPY -c "import vptracker, swift, transformers, torchvision, trackeval; print('vptracker setup ok: torch', __import__('torch').__version__, 'transformers', transformers.__version__)"
