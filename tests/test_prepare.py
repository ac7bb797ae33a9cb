"""The data configs and data_preparation.sh: every job resolves to a registered task with valid
options, and the script reproduces the VPTracker recipe (scaled down) on layout fixtures."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import layouts as fx
import pytest

from vptracker.config import load_config
from vptracker.datasets import available
from vptracker.tasks import get_task

REPO = Path(__file__).resolve().parents[1]
CONFIGS = sorted((REPO / "configs" / "data").glob("*.yaml"))


@pytest.mark.parametrize("path", [p for p in CONFIGS if "jobs" in p.read_text()], ids=lambda p: p.stem)
def test_every_config_job_is_valid(path):
    config = load_config(path)
    assert config["out"] and isinstance(config["seed"], int)
    for name, job in config["jobs"].items():
        get_task(job["task"], **(job.get("options") or {}))
        for source in job["sources"].values():
            assert source["dataset"] in available()
            assert source.get("root") or source["dataset"] in config["roots"], f"{path.name}:{name} has no root"


def test_vptracker_recipe_values():
    config = load_config(REPO / "configs" / "data" / "vptracker.yaml")
    job = config["jobs"]["vptracker_sot"]
    assert job["samples"] == {"train": 1_000_000, "val": 10_000}
    assert {k: v["ratio"] for k, v in job["sources"].items()} == {"tnl2k": 7, "tnllt": 3}
    assert job["options"]["scale_range"] == [2, 8] and job["options"]["inbbox_ratio"] == 0.9


@pytest.mark.slow
def test_data_preparation_script_reproduces_the_recipe_small(tmp_path):
    data = tmp_path / "data"
    boxes = [(4 + i, 4, 10, 8) for i in range(6)]
    fx.write_tnl2k(data / "TNL2K", "train", "a", boxes, "a green box")
    fx.write_tnllt(data / "TNLLT" / "train", "b", boxes, [0] * 6, "a bird")
    env = {**os.environ, "DATA_ROOT": str(data), "OUT_ROOT": str(tmp_path / "out"), "PYTHON": sys.executable}
    args = ["bash", str(REPO / "data_preparation.sh"), "vptracker", "jobs.vptracker_sot.samples.train=40",
            "jobs.vptracker_sot.samples.val=10", "--no-progress"]
    subprocess.run(args, check=True, env=env, capture_output=True, text=True)
    card = json.loads((tmp_path / "out" / "vptracker" / "card.json").read_text())
    assert card["outputs"]["train"]["vptracker_sot"]["counts"] == {"tnl2k": 28, "tnllt": 12}
    assert card["outputs"]["val"]["vptracker_sot"]["counts"] == {"tnl2k": 7, "tnllt": 3}
    first = (tmp_path / "out" / "vptracker" / "train-vptracker_sot-00000.jsonl").read_bytes()
    subprocess.run(args, check=True, env=env, capture_output=True, text=True)
    assert (tmp_path / "out" / "vptracker" / "train-vptracker_sot-00000.jsonl").read_bytes() == first
    bad = subprocess.run(["bash", str(REPO / "data_preparation.sh"), "nothing"], env=env, capture_output=True,
                         text=True, check=False)
    assert bad.returncode == 2 and "usage" in bad.stderr


def test_enumerating_task_fills_consecutive_shards(tmp_path, capsys):
    from vptracker.cli import main

    fx.write_synth_pedes(tmp_path / "pedes", [(1, "a man"), (2, "a woman"), (3, "a child")])
    assert main(["prepare", "--dataset", "synth_pedes", "--root", str(tmp_path / "pedes"), "--task", "pretext_clip",
                 "--out", str(tmp_path / "out"), "--shard-size", "2", "--workers", "1"]) == 0
    files = sorted(p.name for p in (tmp_path / "out").glob("*.jsonl"))
    assert files == ["train-pretext_clip-00000.jsonl", "train-pretext_clip-00001.jsonl"]
    card = json.loads((tmp_path / "out" / "card.json").read_text())
    assert card["outputs"]["train"]["pretext_clip"]["counts"] == {"synth_pedes": 3}
    capsys.readouterr()
    assert main(["prepare", "--dataset", "synth_pedes"]) == 2  # bad input: one line, exit 2
    assert capsys.readouterr().err == "vptracker prepare: error: give --config, or all of --root, --task, --out\n"


def test_relative_roots_give_absolute_frame_paths(tmp_path, monkeypatch):
    from vptracker.tasks.prepare import direct_config, prepare

    fx.write_tnl2k(tmp_path / "TNL2K", "train", "a", [(4 + i, 4, 10, 8) for i in range(4)], "a box")
    monkeypatch.chdir(tmp_path)
    prepare(direct_config("tnl2k", "TNL2K", "vptracker_sot", 3, 0, "out", split="train"), progress=False)
    row = json.loads((tmp_path / "out" / "train-vptracker_sot-00000.jsonl").read_text().splitlines()[0])
    assert all(Path(p).is_absolute() and Path(p).is_file() for p in row["images"])


def test_verify_frames_skips_and_reports_a_damaged_frame(tmp_path):
    from vptracker.tasks.prepare import direct_config, prepare

    seq = fx.write_tnl2k(tmp_path / "TNL2K", "train", "a", [(4 + i, 4, 10, 8) for i in range(4)], "a box")
    damaged = seq / "imgs" / "00003.jpg"
    damaged.write_bytes(damaged.read_bytes()[:200])  # a valid header, truncated pixels
    config = direct_config("tnl2k", str(tmp_path / "TNL2K"), "vptracker_sot", 60, 0, str(tmp_path / "out"),
                           split="train")
    config["verify_frames"] = True
    with pytest.warns(UserWarning, match="damaged frames"):
        card = prepare(config, progress=False)
    assert card["damaged_frames"] == [str(damaged)]
    text = (tmp_path / "out" / "train-vptracker_sot-00000.jsonl").read_text()
    assert "00003.jpg" not in text and text.count("\n") == 60


def test_list_shows_datasets_tasks_and_their_options(capsys):
    from vptracker.cli import main

    assert main(["prepare", "--list"]) == 0
    out = capsys.readouterr().out
    assert "tnl2k" in out and "refer_kitti_v2" in out
    assert "task vptracker_sot: scale=abs" in out and "task omnipt_mot_grpo:" in out


def test_task_options_reach_every_job_that_accepts_them(tmp_path):
    """The frames-per-sample ablation (OmniPT Table 7) is one override for a whole stage mixture."""
    from vptracker.tasks.prepare import prepare

    boxes = [(4 + i, 4, 10, 8) for i in range(12)]
    fx.write_tnl2k(tmp_path / "TNL2K", "train", "a", boxes, "a green box")
    source = {"dataset": "tnl2k", "root": str(tmp_path / "TNL2K"), "split": "train"}
    config = {"out": str(tmp_path / "out"), "seed": 0, "workers": 1, "task_options": {"frames": 4},
              "jobs": {"sot": {"task": "omnipt_sot", "options": {"frames": 8}, "sources": {"s": source},
                               "samples": {"train": 3}},
                       "vp": {"task": "vptracker_sot", "sources": {"s": source}, "samples": {"train": 2}}}}
    card = prepare(config, progress=False)
    assert card["outputs"]["train"]["vp"]["rows"] == 2   # vptracker_sot takes no `frames`: untouched
    rows = [json.loads(line) for line in (tmp_path / "out" / "train-sot-00000.jsonl").read_text().splitlines()]
    assert rows and all(len(row["images"]) == 4 for row in rows)
