"""The real loops on a real (tiny, random-weight) model through ms-swift, on real OTB frames."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vptracker.datasets import load
from vptracker.infer import get_task, make_engine, run_task, track_sot
from vptracker.infer.common import truncate

pytestmark = pytest.mark.slow
CONFIGS = Path(__file__).resolve().parents[1] / "configs" / "infer"


def test_cli_tracks_real_otb_frames_with_a_tiny_model(tmp_path, tiny_model, shared_data, monkeypatch):
    from vptracker.cli import main

    out = tmp_path / "otb"
    argv = ["infer", "--config", str(CONFIGS / "tiny_cpu.yaml"), "--task", "vptracker_sot", "--model",
            str(tiny_model), "--dataset", "otb", "--root", str(shared_data / "otb"), "--out", str(out),
            "--max-frames", "3", "--limit", "2", "max_tokens=8", "progress=false"]
    assert main(argv) == 0
    sequences = load("otb", shared_data / "otb")[:2]
    for seq in sequences:
        rows = [[float(v) for v in line.split(",")] for line in (out / f"{seq.name}.txt").read_text().splitlines()]
        assert len(rows) == 3
        np.testing.assert_allclose(rows[0], seq.tracks[0].boxes[0])      # first line: the initial box
        for x, y, w, h in rows:
            assert w > 0 and h > 0 and x >= 0 and y >= 0 and x + w <= seq.width and y + h <= seq.height
    log = [json.loads(line) for line in (out / "responses.jsonl").read_text().splitlines()]
    assert len(log) == 4 and all(isinstance(entry["answer"], str) for entry in log)
    assert json.loads((out / "infer_config.json").read_text())["family"] == "qwen2_5_vl"
    # a restart finds everything done and does not even load the model
    import vptracker.infer

    before = (out / "responses.jsonl").read_bytes()

    def no_model(*args, **kwargs):
        raise AssertionError("a finished run must not load the model")
    monkeypatch.setattr(vptracker.infer, "make_engine", no_model)
    assert main(argv) == 0
    assert (out / "responses.jsonl").read_bytes() == before


def test_vptracker_special_tokens_are_single_tokens(tiny_model):
    engine = make_engine(tiny_model, special_tokens=get_task("vptracker_sot").special_tokens, max_tokens=4,
                         max_pixels=50176)
    tokenizer = engine.swift.tokenizer
    for token in ("<ref>", "</ref>", "<template>", "</template>", "<search>", "</search>"):
        assert tokenizer.tokenize(token) == [token]
    assert engine.family == "qwen2_5_vl"


@pytest.mark.parametrize("family,task", [("qwen2_5_vl", "omnipt_mot"), ("qwen3_vl", "omnipt_sot")])
def test_multi_round_loops_run_on_a_tiny_model(tmp_path, tiny_model_factory, shared_data, family, task):
    model = tiny_model_factory(family)
    engine = make_engine(model, max_tokens=6, max_pixels=50176, max_batch_size=4)
    assert engine.family == family
    seqs = [truncate(s, 4) for s in load("otb", shared_data / "otb")[:2]]
    if task == "omnipt_sot":
        summary = track_sot(engine, seqs, tmp_path, task=task, options={"frames_per_sample": 3}, progress=False)
        assert all(len((tmp_path / f"{s.name}.txt").read_text().splitlines()) == 4 for s in seqs)
    else:
        summary = run_task(task, engine, seqs, tmp_path, {"frames_per_sample": 3}, progress=False)
        assert all((tmp_path / f"{s.name}.txt").exists() for s in seqs)
    assert summary.stats.engine_calls < summary.stats.requests   # two sequences per call


def test_infer_sh_runs_one_worker_per_device_and_merges(tmp_path, tiny_model, shared_data):
    import os
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    out = tmp_path / "sharded"
    env = {**os.environ, "NPROC_PER_NODE": "2", "NNODES": "1", "NODE_RANK": "0"}
    cmd = ["bash", str(repo / "infer.sh"), "--config", str(CONFIGS / "tiny_cpu.yaml"), "--model", str(tiny_model),
           "--dataset", "otb", "--root", str(shared_data / "otb"), "--out", str(out), "--max-frames", "2",
           "max_tokens=4", "progress=false"]
    subprocess.run(cmd, check=True, env=env, cwd=repo, capture_output=True, text=True, timeout=600)
    names = sorted(s.name for s in load("otb", shared_data / "otb"))
    assert sorted(p.stem for p in out.glob("*.txt")) == names
    assert sorted((out / ".shards").iterdir()) == [out / ".shards" / "0-of-2.done", out / ".shards" / "1-of-2.done"]
    log = [json.loads(line) for line in (out / "responses.jsonl").read_text().splitlines()]
    assert sorted(entry["sequence"] for entry in log) == names


def test_infer_sh_dry_run_assigns_global_shards(tmp_path):
    import os
    import subprocess

    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "NPROC_PER_NODE": "4", "NNODES": "3", "NODE_RANK": "1", "DRY_RUN": "1"}
    result = subprocess.run(["bash", str(repo / "infer.sh"), "--model", "m", "--out", str(tmp_path)], env=env,
                            cwd=repo, capture_output=True, text=True, check=True, timeout=120)
    lines = result.stdout.splitlines()
    assert [line.split("--shard ")[1].split()[0] for line in lines] == ["4/12", "5/12", "6/12", "7/12"]
    assert [line.split()[0] for line in lines] == [f"CUDA_VISIBLE_DEVICES={r}" for r in range(4)]


@pytest.mark.parametrize("family", ["qwen2_5_vl", "qwen3_vl"])
def test_the_model_sees_the_image_size_the_boxes_are_mapped_with(tiny_model_factory, shared_data, family):
    """Boxes in the 'resized' convention only land right if our resize is the engine's resize."""
    from PIL import Image

    from vptracker.infer import TaskOptions
    from vptracker.infer.engine import Request

    engine = make_engine(tiny_model_factory(family), max_tokens=4, max_pixels=40000, min_pixels=3136)
    frame = Image.open(shared_data / "otb" / "Football1" / "img" / "0001.jpg").convert("RGB")
    cmap = TaskOptions(family=family, box_scale="resized", min_pixels=3136, max_pixels=40000).coord_map(*frame.size)
    encoded = engine.swift.template.encode(engine._swift_request(Request.user("<image>where?", [frame])))
    _, grid_h, grid_w = encoded["image_grid_thw"][0].tolist()
    patch = engine.swift.processor.image_processor.patch_size
    assert (grid_w * patch, grid_h * patch) == (cmap.resized_width, cmap.resized_height)
    assert (cmap.resized_width, cmap.resized_height) != frame.size
