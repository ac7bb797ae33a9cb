"""VPTracker SOT pair builder: ratio mixing, determinism, option errors and the prepare command.

The sampler's rules (pairs, answers, visual-prompt geometry down to pixels) are checked against a
restatement of the released code in tests/test_released_vptracker.py."""
from __future__ import annotations

import json

import layouts as fx
import pytest

from vptracker.cli import main
from vptracker.datasets import load
from vptracker.tasks import get_task
from vptracker.tasks.base import generate, ratio_counts
from vptracker.tasks.prepare import prepare

W, H = 96, 64


def _boxes(n, absent=()):
    out = []
    for i in range(n):
        out.append((0, 0, 0, 0) if i in absent else (10 + 3 * i, 8 + i, 14, 12))
    out[-1] = (W - 10, H - 8, 20, 16)  # crosses the right/bottom border
    return out


@pytest.fixture(scope="module")
def tnl2k(tmp_path_factory):
    root = tmp_path_factory.mktemp("tnl2k")
    fx.write_tnl2k(root, "train", "carA", _boxes(8, absent={3, 4}), "the green car", size=(W, H))
    fx.write_tnl2k(root, "train", "carB", _boxes(6, absent={2}), "a box", size=(W, H), ext=".png")
    return root


def test_ratio_mixing_gives_exact_counts():
    assert ratio_counts({"tnl2k": 7, "tnllt": 3}, 1_000_000) == {"tnl2k": 700_000, "tnllt": 300_000}
    assert sum(ratio_counts({"a": 1, "b": 1, "c": 1}, 10).values()) == 10
    with pytest.raises(ValueError, match="non-negative"):
        ratio_counts({"a": 0}, 5)


def test_bad_options_are_named():
    with pytest.raises(ValueError, match="unknown option.*'scal'"):
        get_task("vptracker_sot", scal="abs")
    with pytest.raises(ValueError, match="option scale='pixels'"):
        get_task("vptracker_sot", scale="pixels")
    with pytest.raises(ValueError, match=r"option scale='resized', expected one of \('abs', 'norm1000'\)"):
        get_task("vptracker_sot", scale="resized")
    with pytest.raises(KeyError, match="unknown task 'nope'"):
        get_task("nope")


def test_prepare_cli_direct_form_is_deterministic(tnl2k, tmp_path, capsys):
    args = ["prepare", "--dataset", "tnl2k", "--root", str(tnl2k), "--split", "train", "--task", "vptracker_sot",
            "--num-samples", "50", "--seed", "7", "--shard-size", "20"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    assert main(args + ["--out", str(tmp_path / "b")]) == 0
    files = sorted(p.name for p in (tmp_path / "a").glob("*.jsonl"))
    assert files == ["train-vptracker_sot-00000.jsonl", "train-vptracker_sot-00001.jsonl",
                     "train-vptracker_sot-00002.jsonl"]
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    card = json.loads((tmp_path / "a" / "card.json").read_text())
    assert card["seed"] == 7 and card["outputs"]["train"]["vptracker_sot"]["counts"] == {"tnl2k": 50}
    assert main(args[:-4] + ["--seed", "8", "--out", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / files[0]).read_bytes() != (tmp_path / "a" / files[0]).read_bytes()


def test_prepare_config_mixes_sources_by_ratio(tnl2k, tmp_path):
    lt = tmp_path / "tnllt"
    fx.write_tnllt(lt, "lt1", _boxes(5), [0, 0, 0, 0, 0], "a bird", size=(W, H))
    config = {"seed": 1, "out": str(tmp_path / "out"), "shard_size": 1000,
              "jobs": {"vp": {"task": "vptracker_sot", "options": {"scale": "norm1000"},
                              "sources": {"tnl2k": {"dataset": "tnl2k", "root": str(tnl2k), "split": "train",
                                                    "ratio": 7},
                                          "tnllt": {"dataset": "tnllt", "root": str(lt), "ratio": 3}},
                              "samples": {"train": 100, "val": 10}}}}
    card = prepare(config, progress=False)
    assert card["outputs"]["train"]["vp"]["counts"] == {"tnl2k": 70, "tnllt": 30}
    assert card["outputs"]["val"]["vp"]["counts"] == {"tnl2k": 7, "tnllt": 3}
    lines = (tmp_path / "out" / "train-vp-00000.jsonl").read_text().splitlines()
    assert len(lines) == 100 and sum("lt1" in ln for ln in lines) == 30
    config["jobs"]["vp"]["sources"]["tnllt"]["root"] = str(tmp_path / "nowhere")
    with pytest.raises(ValueError, match=r"jobs\.vp\.sources\.tnllt\.root: folder .*nowhere does not exist"):
        prepare(config, progress=False)


def test_output_does_not_depend_on_worker_count(tnl2k, tmp_path):
    from vptracker.tasks.base import ShardWriter

    seqs = load("tnl2k", tnl2k, split="train")
    task = get_task("vptracker_sot")
    index = {"tnl2k": task.index(seqs)}
    outs = []
    for workers in (1, 2):
        out = tmp_path / f"w{workers}"
        counts, files = ShardWriter(out, "train", 7).write_random(task, index, {}, 30, 11, workers, False)
        assert counts == {"tnl2k": 30} and len(files) == 5
        outs.append(b"".join((out / f).read_bytes() for f in files))
    assert outs[0] == outs[1]
    streamed = [json.dumps(r, separators=(",", ":")) for _, r in generate(task, index, {}, 30, 11, shard_size=7)]
    assert outs[0].decode().splitlines() == streamed
