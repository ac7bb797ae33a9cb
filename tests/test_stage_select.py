"""Per-stage evaluation (``select:``): every saved checkpoint is scored on a validation split, the
manifest records the scores and the best, and a chain continues from the best checkpoint."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vptracker.config import ConfigError
from vptracker.train.select import choose
from vptracker.train.stages import load_stage


def test_best_is_the_highest_score_and_a_tie_keeps_the_earlier_checkpoint():
    assert choose({"checkpoint-2": 3.0, "checkpoint-10": 5.0, "checkpoint-1": 1.0}) == "checkpoint-10"
    assert choose({"checkpoint-2": 4.0, "checkpoint-1": 4.0, "checkpoint-3": 2.0}) == "checkpoint-1"
    assert choose({"checkpoint-1": 0.5, "checkpoint-2": 0.2}, lower_is_better=True) == "checkpoint-2"
    assert choose({"checkpoint-1": None}) is None


def test_best_without_a_metric_is_refused_and_last_is_the_default(tmp_path):
    from vptracker.train.commands import final_weights, plan_stage

    common = ["profile=tiny", f"model={tmp_path}", f"run_dir={tmp_path / 'run'}", "merge_lora=false"]
    with pytest.raises(ConfigError, match="select.metric.*checkpoint: best needs a metric"):
        plan_stage(load_stage("stage3_sft", [*common, "select.checkpoint=best"]), {})
    with pytest.raises(ConfigError, match="select.root.*missing"):
        plan_stage(load_stage("stage3_sft", [*common, "select.metric=HOTA", "select.task=omnipt_mot",
                                             "select.dataset=synthetic_mot"]), {})
    cfg = load_stage("stage3_sft", common)
    assert [c.role for c in plan_stage(cfg, {})] == ["train"]
    assert final_weights(cfg).name == "last-checkpoint"


def _mot_rows(root: Path, out: Path, frames: int) -> dict[str, Path]:
    from vptracker.tasks.prepare import prepare

    source = {"synthetic": {"dataset": "synthetic_mot", "root": str(root), "split": "train"}}
    options = {"family": "qwen2_5_vl", "frames": frames}
    jobs = {name: {"task": task, "options": options, "sources": source, "samples": {"train": 4}}
            for name, task in (("sft", "omnipt_mot"), ("grpo", "omnipt_mot_grpo"))}
    prepare({"seed": 0, "out": str(out), "workers": 1, "jobs": jobs}, progress=False)
    return {name: out / f"train-{name}-*.jsonl" for name in jobs}


@pytest.mark.slow
def test_stage_scores_its_checkpoints_and_the_chain_continues_from_the_best(tiny_model, tmp_path):
    from vptracker.datasets.synthetic import SyntheticConfig, write_mot
    from vptracker.train import run_chain

    syn = SyntheticConfig(width=64, height=64, frames=4, distractors=(0, 0))
    root = write_mot(tmp_path / "mot", {"train": 2, "val": 1}, seed=0, cfg=syn, people=2)
    rows = _mot_rows(root, tmp_path / "rows", frames=2)
    run_dir = tmp_path / "run"
    select = ["checkpoint=best", "metric=HOTA", "task=omnipt_mot", "dataset=synthetic_mot", f"root={root}",
              "split=val", "infer_config=configs/infer/tiny_cpu.yaml",
              "infer_overrides=[max_tokens=24,options.frames_per_sample=2,options.max_pixels=null]"]
    lines: list[str] = []
    final = run_chain(["stages=[stage3_sft,stage4_iou_grpo]", "profile=tiny", f"model={tiny_model}",
                       f"run_dir={run_dir}", "val_dataset=[]", "swift.report_to=none",
                       f"stage3_sft.dataset=[{rows['sft']}]", "stage3_sft.max_steps=3",
                       *(f"stage3_sft.select.{s}" for s in select),
                       f"stage4_iou_grpo.dataset=[{rows['grpo']}]", "stage4_iou_grpo.max_steps=1"],
                      echo=lines.append)
    s3 = json.loads((run_dir / "stage3_sft" / "manifest.json").read_text())
    assert s3["status"] == "complete" and "select" in s3["completed"]
    chosen = s3["select"]
    # every saved checkpoint scored, the best one recorded, and the rule followed
    assert set(chosen["scores"]) == {"checkpoint-1", "checkpoint-2", "checkpoint-3"}
    assert chosen["metric"] == "HOTA" and chosen["split"] == "val"
    assert chosen["best"] == choose(chosen["scores"]) == chosen["chosen"]
    for name in chosen["scores"]:
        summary = json.loads((run_dir / "stage3_sft" / "select" / name / "eval" / "summary.json").read_text())
        assert summary["task"] == "mot" and summary["COMBINED"]["HOTA"] == chosen["scores"][name]
    link = run_dir / "stage3_sft" / "train" / "best-checkpoint"
    assert os.readlink(link) == chosen["best"]
    # the merge read the best checkpoint, and stage 4 started from that merge
    merge = next(c for c in s3["commands"] if " export " in c)
    assert f"--adapters {link}" in merge
    s4 = json.loads((run_dir / "stage4_iou_grpo" / "manifest.json").read_text())
    assert s4["resolved_config"]["init"] == str(run_dir / "stage3_sft" / "merged")
    assert s4["status"] == "complete" and final == run_dir / "stage4_iou_grpo" / "merged"
    assert "select" not in s4   # a stage without a metric scores nothing
