"""The four OmniPT stages chained on rows that ``vptracker prepare`` writes from the real stage
data configs over small datasets in every official layout (DanceTrack, MOT17, Refer-KITTI-V2,
CRTrack, BenSMOT, SYNTH-PEDES, LaSOT), with the tiny profile and a tiny model."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest
from omnipt_data import chain_overrides, prepare_stages, write_datasets

from vptracker.prompts import texts as prompts
from vptracker.train import last_checkpoint
from vptracker.train.stages import OMNIPT_STAGES, REPO_ROOT

pytestmark = pytest.mark.slow


def _rows(folder):
    return [json.loads(line) for path in sorted(folder.glob("train-*.jsonl")) for line in path.read_text().splitlines()]


def test_four_stages_train_on_prepared_rows(tiny_model, tmp_path):
    roots = write_datasets(tmp_path / "datasets")
    data_root = tmp_path / "prepared"
    cards = prepare_stages(roots, data_root)
    # MOT's three queries reach both GRPO stages: one row per query, each with its own solution
    for folder in ("stage1_grpo_format_mixture", "stage4_grpo_iou"):
        mot = [r for r in _rows(data_root / folder) if len(r["messages"]) > 1 or prompts.MOT_QUERY_DETECT in
               r["messages"][0]["content"]]
        assert sorted({len(r["messages"]) for r in mot}) == [1, 3, 5], folder
        assert all(r["reward_matching"] in ("set", "order") and r["solution"] for r in mot)
    assert cards["stage1_grpo_format"]["outputs"]["train"]["grounding"]["rows"] == 2

    run_dir = tmp_path / "run"
    argv = [sys.executable, "-m", "vptracker", "train", "--stage", "all",
            *chain_overrides(tiny_model, data_root, run_dir)]
    done = subprocess.run(argv, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for name in OMNIPT_STAGES:
        manifest = json.loads((run_dir / name / "manifest.json").read_text())
        assert manifest["status"] == "complete"
        # every dataset file the stage read is a prepared one, with its card and row count
        assert manifest["data"] and all(d["rows"] > 0 and "outputs" in d["card"] for d in manifest["data"])
        train_dir = run_dir / name / ("sft" if name == "stage2_midtrain" else "train")
        assert last_checkpoint(train_dir) is not None
    for name, reward in (("stage1_format_grpo", "OmniPTFormatReward"), ("stage4_iou_grpo", "OmniPTIoUReward")):
        log = json.loads((last_checkpoint(run_dir / name / "train") / "trainer_state.json").read_text())["log_history"]
        assert any(f"rewards/{reward}/mean" in e for e in log), name
    assert "row scored 0" not in done.stdout + done.stderr  # no reward refused a row
