"""The demo's scoring and report helpers, without running a model."""
from __future__ import annotations

import json

import numpy as np
import pytest

from vptracker.boxes import render_vptracker
from vptracker.datasets import load
from vptracker.datasets.synthetic import SyntheticConfig, write_sot
from vptracker.demo import pipeline
from vptracker.demo.report import log_points, summary_json


def _scores(auc: float) -> dict:
    return {"auc": auc, "precision": auc + 1, "norm_precision": auc + 2, "protocol": "ostrack", "num_sequences": 3}


def test_summary_has_the_required_keys_and_margins():
    scores = {"trained": _scores(40.0), "untrained": _scores(20.0), "hold_first_box": _scores(21.5)}
    s = summary_json(scores, {"trained": 97.5, "untrained": 0.0}, {"SFT stage": 12.0}, 30.0, {"quick": True})
    assert (s["auc_trained"], s["auc_untrained"], s["auc_hold_first_box"]) == (40.0, 20.0, 21.5)
    assert (s["parse_rate_before"], s["parse_rate_after"]) == (0.0, 97.5)
    assert s["margin_over_untrained"] == 20.0 and s["margin_over_hold_first_box"] == 18.5
    assert s["quick"] is True and "auc_after_sft" not in s


def test_parse_rate_counts_only_the_trained_json_grammar(tmp_path):
    answers = [render_vptracker((1, 2, 30, 40)), render_vptracker(None), "[1, 2, 3, 4]", "\n\n\n", "garbage"]
    (tmp_path / "responses.jsonl").write_text("".join(json.dumps({"answer": a}) + "\n" for a in answers))
    assert pipeline.parse_rate(tmp_path) == pytest.approx(40.0)


def test_parse_rate_for_the_omnipt_grammar(tmp_path):
    answers = ["<bbox>1,2,30,40</bbox><bbox>3,4,30,40</bbox>", "<bbox>1,2,30,40</bbox><None>",
               "<bbox>1,2,30,40</bbox>(3,4,33,44)", "[1, 2, 3, 4]"]
    (tmp_path / "responses.jsonl").write_text("".join(json.dumps({"answer": a}) + "\n" for a in answers))
    assert pipeline.parse_rate(tmp_path, "omnipt_sot") == pytest.approx(50.0)


def test_hold_first_box_scores_like_a_frozen_tracker(tmp_path):
    cfg = SyntheticConfig(width=96, height=96, frames=20)
    write_sot(tmp_path / "sot", {"test": 3}, seed=2, cfg=cfg)
    test = load("synthetic_sot", tmp_path / "sot", "test")
    results = pipeline.hold_first_box(test, tmp_path / "hold")
    rows = np.loadtxt(results / f"{test[0].name}.txt", delimiter=",")
    assert rows.shape == (20, 4) and (rows == test[0].target.boxes[0]).all()
    summary = pipeline.score(test, results)
    # Moving targets: holding the first box is right on frame 1 and drifts off afterwards.
    assert 0 < summary["auc"] < 100
    # A perfect tracker on the same sequences scores higher.
    perfect = tmp_path / "perfect"
    perfect.mkdir()
    for seq in test:
        np.savetxt(perfect / f"{seq.name}.txt", seq.target.boxes, fmt="%d", delimiter=",")
    assert pipeline.score(test, perfect)["auc"] > summary["auc"]


def test_log_points_reads_swift_logging(tmp_path):
    lines = [{"loss": 3.5, "global_step/max_steps": "1/10"}, {"reward": 0.2, "global_step/max_steps": "2/10"},
             {"loss": 1.0, "global_step/max_steps": "10/10"}, {"train_runtime": 5}]
    (tmp_path / "train").mkdir()
    (tmp_path / "train" / "logging.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines) + "not json\n")
    assert log_points(tmp_path, "loss") == [(1, 3.5), (10, 1.0)]
    assert log_points(tmp_path, "reward") == [(2, 0.2)]
