"""`vptracker demo --quick` end to end: every step runs and the report holds every section."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from vptracker.cli import main
from vptracker.demo import demo_config
from vptracker.demo.report import SECTIONS


def test_quick_config_is_a_small_version_of_the_full_one():
    full, quick = demo_config(False), demo_config(True)
    assert set(quick) == set(full)
    assert quick["sft"]["max_steps"] < full["sft"]["max_steps"]
    assert quick["data"]["test_sequences"] <= full["data"]["test_sequences"]
    # The recipe that makes training cheap is shared: the compact vocabulary (no 151,680-row layer).
    assert quick["model"]["compact_vocab"] and full["model"]["compact_vocab"]


def test_overrides_reach_the_demo_config():
    cfg = demo_config(True, ["sft.max_steps=7", "model.hidden=32"])
    assert cfg["sft"]["max_steps"] == 7 and cfg["model"]["hidden"] == 32


def test_a_misspelled_demo_setting_is_refused_with_exit_2(tmp_path, capsys):
    """Nothing runs on the defaults because of a typo: one line per key, the nearest known one, exit 2."""
    rc = main(["demo", "--quick", "--out", str(tmp_path / "d"), "sft.max_step=3", "task_options.frame=2"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "unknown key 'sft.max_step' (did you mean 'max_steps'?)" in err[0]
    assert "task_options.frame: no task takes this option (did you mean 'frames'?)" in err[1]
    assert not (tmp_path / "d").exists()


def test_demo_refuses_to_empty_a_foreign_folder(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not empty"):
        main(["demo", "--quick", "--out", str(tmp_path)])
    assert (tmp_path / "precious.txt").read_text() == "keep me"


def _hold_first_box_auc(test_root) -> float:
    """OSTrack's success AUC of the first box held still, computed from the ground-truth files alone:
    IoU > threshold over 0:0.05:1, frames with w or h <= 0 miss, averaged over sequences."""
    import numpy as np

    curves = []
    for gt_file in sorted(test_root.glob("*/groundtruth.txt")):
        gt = np.loadtxt(gt_file, delimiter=",", ndmin=2)
        pred = np.repeat(gt[:1], len(gt), axis=0)
        x1, y1 = np.maximum(pred[:, 0], gt[:, 0]), np.maximum(pred[:, 1], gt[:, 1])
        x2 = np.minimum(pred[:, 0] + pred[:, 2], gt[:, 0] + gt[:, 2])
        y2 = np.minimum(pred[:, 1] + pred[:, 3], gt[:, 1] + gt[:, 3])
        inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
        iou = inter / (pred[:, 2] * pred[:, 3] + gt[:, 2] * gt[:, 3] - inter)
        iou[(gt[:, 2:] <= 0).any(axis=1)] = -1
        curves.append([(iou > t).mean() for t in np.linspace(0, 1, 21)])
    return 100 * float(np.mean(curves))


@pytest.mark.slow
def test_quick_demo_runs_the_whole_pipeline(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--quick", "--out", str(out)]) == 0
    terminal = capsys.readouterr()
    summary = json.loads((out / "summary.json").read_text())
    # The report prints the summary's numbers, not numbers of its own.
    report = (out / "report.md").read_text()
    assert (f"Trained AUC {summary['auc_trained']:.2f} vs untrained {summary['auc_untrained']:.2f} and "
            f"hold-first-box {summary['auc_hold_first_box']:.2f}") in report
    # The baseline comes from the ground truth, whatever the tracker did.
    assert summary["auc_hold_first_box"] == pytest.approx(_hold_first_box_auc(out / "data" / "sot" / "test"), abs=0.01)
    # Training ran for real: the SFT loss fell over its few steps.
    from vptracker.demo.report import log_points

    losses = [v for _, v in log_points(out / "runs" / demo_config(True)["sft"]["stage"], "loss")]
    assert len(losses) >= 2 and losses[-1] < losses[0] - 0.05, losses
    # The terminal shows the demo's steps and the training bars; the libraries' lines are in demo.log.
    log = (out / "demo.log").read_text()
    assert "[demo" in terminal.out and "Train:" in terminal.out
    assert "trust_remote_code" in log and "swift INFO" in log
    for noise in ("trust_remote_code", "swift INFO", "[INFO:swift]"):
        assert noise not in terminal.out + terminal.err, noise
    assert "demo.log" in report
    for key in ("auc_trained", "auc_untrained", "auc_hold_first_box", "parse_rate_before", "parse_rate_after"):
        assert 0.0 <= summary[key] <= 100.0, key
    assert summary["task"] == demo_config(True)["task"]
    # threads: auto chose a count for every timed step and wrote it down beside the step's time.
    assert set(summary["threads"]) == set(summary["step_seconds"]) and set(summary["threads"].values()) <= {1, 2}
    # The first frame is the ground truth, so no tracker can score zero; the baseline is exact.
    assert summary["auc_hold_first_box"] > 0
    for section in SECTIONS:
        assert section in report, section
    # Every picture the report links exists: curves, training curves and the tracking GIF.
    import re

    links = re.findall(r"\]\(([^)]+)\)", report)
    assert any(link.endswith(".gif") for link in links)
    assert any("success" in link for link in links)
    for link in links:
        assert (out / link).is_file(), link
    # The real stages ran: both left their final weights and a manifest.
    cfg = demo_config(True)
    for stage in (cfg["sft"]["stage"], cfg["grpo"]["stage"]):
        assert (out / "runs" / stage / "train" / "last-checkpoint").is_dir(), stage
        assert json.loads((out / "runs" / stage / "manifest.json").read_text())["status"] == "complete"
    # Official layouts were written for both data sets and the held-out results for every tracker.
    assert (out / "data" / "mot" / "train_seqmap.txt").is_file()
    for tracker in ("untrained", "trained", "hold_first_box"):
        assert len(list((out / "results" / tracker).glob("synth_test_*.txt"))) == 2


def test_sincos_vision_positions_replace_the_random_table(tmp_path):
    """`model.vision_pos: sincos` writes a smooth 2-D table: neighbouring cells get close codes,
    distant cells distinct ones, and the codes separate rows from columns."""
    import torch
    from safetensors.torch import load_file

    from vptracker.demo.pipeline import _sincos_vision_positions, sincos_2d
    from vptracker.tiny.model import make_tiny_model

    table = sincos_2d(16, 128)
    assert table.shape == (256, 128)
    grid = table.reshape(16, 16, 128)
    step = (grid[:, 1:] - grid[:, :-1]).norm(dim=-1).mean()
    far = (grid[:, 15] - grid[:, 0]).norm(dim=-1).mean()
    assert far > 3 * step
    assert torch.allclose(grid[3, 5, :64], grid[3, 9, :64]) and not torch.allclose(grid[3, 5, 64:], grid[3, 9, 64:])
    model = make_tiny_model("qwen3_vl", tmp_path / "m", hidden=32, layers=1, vision_depth=1)
    _sincos_vision_positions(model)
    state = load_file(model / "model.safetensors")
    assert torch.allclose(state["model.visual.pos_embed.weight"], sincos_2d(16, 32))
    qwen2 = make_tiny_model("qwen2_5_vl", tmp_path / "q", hidden=32, layers=1, vision_depth=1)
    with pytest.raises(ValueError, match="pos_embed"):
        _sincos_vision_positions(qwen2)


@pytest.mark.slow
def test_quick_mot_demo_runs_the_four_stages_the_mot_loop_and_trackeval(tmp_path):
    out = tmp_path / "mot"
    assert main(["demo", "--quick", "--out", str(out), "task=omnipt_mot"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    cfg = demo_config(True, ["task=omnipt_mot"])
    assert set(summary["threads"]) == set(summary["step_seconds"]) and set(summary["threads"].values()) <= {1, 2}
    assert summary["stages"] == cfg["stages"] == ["stage1_format_grpo", "stage2_midtrain", "stage3_sft",
                                                  "stage4_iou_grpo"]
    for stage in cfg["stages"]:
        assert json.loads((out / "runs" / stage / "manifest.json").read_text())["status"] == "complete", stage
    # Both GRPO stages trained on the builder's rows for all three MOT queries (1, 3 and 5 context turns).
    for stage in ("stage1_format_grpo", "stage4_iou_grpo"):
        rows = [json.loads(line) for f in (out / "prepared").glob(f"train-{stage}-*.jsonl")
                for line in f.read_text().splitlines()]
        assert {len(r["messages"]) for r in rows} == {1, 3, 5} and all(r["solution"] for r in rows), stage
    # SFT rows: windows of the config's frames; the track query's given boxes are jittered, the answers not.
    rows = [json.loads(line) for f in (out / "prepared").glob("train-stage3_sft-*.jsonl")
            for line in f.read_text().splitlines()]
    assert rows and all(len(r["images"]) == cfg["task_options"]["frames"] for r in rows)
    assert cfg["task_options"]["prior_jitter"] > 0
    assert any(r["messages"][1]["content"] not in r["messages"][2]["content"] for r in rows)
    assert all(r["messages"][3]["content"].count("<bbox>") >= r["messages"][1]["content"].count("<bbox>")
               for r in rows)
    # The baseline is the first frame's ground truth held still, read here straight from gt.txt.
    test_dir = out / "data" / "mot" / "test"
    for gt in test_dir.glob("*/gt/gt.txt"):
        table = [line.split(",") for line in gt.read_text().splitlines()]
        first = {int(r[1]): [float(v) for v in r[2:6]] for r in table if r[0] == "1"}
        frames = max(int(r[0]) for r in table)
        held = [line.split(",") for line in (out / "results" / "hold_first_frame" / f"{gt.parent.parent.name}.txt")
                .read_text().splitlines()]
        assert len(held) == len(first) * frames
        assert all([float(v) for v in r[2:6]] == first[int(r[1])] for r in held)
    # TrackEval scored every tracker, and the report prints the summary's numbers.
    report = (out / "report.md").read_text()
    for key in ("hota", "deta", "assa", "mota", "idf1"):
        for who in ("trained", "untrained", "baseline"):
            assert 0.0 <= summary[f"{key}_{who}"] <= 100.0, (key, who)
    assert summary["hota_baseline"] > 0  # ground-truth boxes on the first frame at least
    assert f"HOTA trained {summary['hota_trained']:.2f} vs untrained {summary['hota_untrained']:.2f}" in report
    assert (out / "demo.log").is_file() and "demo.log" in report


def test_table6_rows_share_their_first_stages(tmp_path, monkeypatch):
    """table6=true trains each distinct stage prefix once: 6 stage runs for the paper's 4 rows (not
    11), each from the weights of the prefix before it, each prefix in its own run folder."""
    import vptracker.train.runner as runner
    from vptracker.demo import mot

    calls = []

    def fake_run_stage(stage, overrides, **_):
        over = dict(o.split("=", 1) for o in overrides)
        calls.append((stage, over.get("init"), over["run_dir"]))
        return tmp_path / f"w{len(calls)}"

    monkeypatch.setattr(runner, "run_stage", fake_run_stage)
    cfg = demo_config(False, ["task=omnipt_mot"])
    files = {s: [f"{s}.jsonl"] for s in mot.SHORT}
    rows = [(name, stages) for name, stages, _ in mot.table6_rows()]
    done = mot.train_rows(cfg, tmp_path / "base", files, tmp_path, print, None, rows)
    assert [c[0] for c in calls] == ["stage1_format_grpo", "stage3_sft", "stage2_midtrain", "stage3_sft",
                                     "stage4_iou_grpo", "stage4_iou_grpo"]
    w = {i + 1: str(tmp_path / f"w{i + 1}") for i in range(6)}
    assert [c[1] for c in calls] == [None, w[1], w[1], w[3], w[2], w[4]]
    assert [Path(c[2]).name for c in calls] == ["from-base", "from-s1", "from-s1", "from-s1-s2", "from-s1-s3",
                                                "from-s1-s2-s3"]
    assert {k: v[0].name for k, v in done.items()} == {"SFT": "w2", "MT+SFT": "w4", "SFT+RL": "w5",
                                                       "MT+SFT+RL": "w6"}
    assert [mot.label(r[1]) for r in rows] == [r[0] for r in rows]
