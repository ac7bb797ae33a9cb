"""VPTracker SOT pair builder: sampling rules, answers that map back to the annotation, visual-prompt
geometry (down to pixels), ratio mixing, determinism and the prepare command.

The rule tests here cover the ``project`` sampling option (``PROJECT``); the released sampler's
rules are checked against a restatement of the released code in tests/test_released_vptracker.py.
The driver tests (ratios, determinism, prepare) run the default (released) sampling."""
from __future__ import annotations

import json
import random

import layouts as fx
import numpy as np
import pytest
from PIL import Image

from vptracker.boxes import CoordMap, parse_vptracker
from vptracker.cli import main
from vptracker.datasets import load
from vptracker.prompts import vptracker_prompt
from vptracker.tasks import get_task
from vptracker.tasks.base import generate, ratio_counts
from vptracker.tasks.prepare import prepare
from vptracker.visual_prompt import VisualPrompt, render, template_region

W, H = 96, 64
PROJECT = {"sampling": "project", "prompt_text": "inference"}  # the project's own rows (README)


def _boxes(n, absent=()):
    out = []
    for i in range(n):
        out.append((0, 0, 0, 0) if i in absent else (10 + 3 * i, 8 + i, 14, 12))
    out[-1] = (W - 10, H - 8, 20, 16)  # crosses the right/bottom border: answers must clip
    return out


@pytest.fixture(scope="module")
def tnl2k(tmp_path_factory):
    root = tmp_path_factory.mktemp("tnl2k")
    fx.write_tnl2k(root, "train", "carA", _boxes(8, absent={3, 4}), "the green car", size=(W, H))
    fx.write_tnl2k(root, "train", "carB", _boxes(6, absent={2}), "a box", size=(W, H), ext=".png")
    return root


def _rows(seqs, n, seed=0, **options):
    task = get_task("vptracker_sot", **{**PROJECT, **options})
    return [row for _, row in generate(task, {"src": task.index(seqs)}, {"src": 1}, n, seed)]


def _lookup(seqs):
    return {f: (s, i) for s in seqs for i, f in enumerate(s.frames)}


def test_rows_follow_the_pair_rule_and_answers_map_back(tnl2k):
    seqs = load("tnl2k", tnl2k, split="train")
    where = _lookup(seqs)
    rows = _rows(seqs, 400)
    seen_absent = 0
    for row in rows:
        (seq, t), (seq2, s) = where[row["images"][0]], where[row["images"][1]]
        assert seq is seq2 and s > t and seq.target.visible[t]
        assert row["messages"][0]["content"] == vptracker_prompt(seq.language)
        ans = parse_vptracker(row["messages"][1]["content"])
        if not seq.target.visible[s]:
            seen_absent += 1
            assert ans.visible is False and ans.box == (0, 0, 0, 0)
            continue
        x, y, w, h = seq.target.boxes[s]
        expected = (max(x, 0), max(y, 0), min(x + w, W), min(y + h, H))
        assert ans.visible is True and ans.box == tuple(float(round(v)) for v in expected)
        assert 0 <= ans.box[0] < ans.box[2] <= W and 0 <= ans.box[1] < ans.box[3] <= H
    assert seen_absent > 0


def test_norm1000_answers_round_trip_through_the_box_grammar(tnl2k):
    seqs = load("tnl2k", tnl2k, split="train")
    where = _lookup(seqs)
    for row in _rows(seqs, 200, scale="norm1000"):
        seq, s = where[row["images"][1]]
        ans = parse_vptracker(row["messages"][1]["content"])
        if ans.visible:
            assert all(0 <= v <= 1000 for v in ans.box)
            back = CoordMap("norm1000", W, H).to_frame(ans.box)
            x, y, w, h = seq.target.boxes[s]
            expected = (max(x, 0), max(y, 0), min(x + w, W), min(y + h, H))
            assert np.allclose(back, expected, atol=0.5 * W / 1000 + 1e-9)


def test_visual_prompt_geometry_follows_the_rules(tnl2k):
    seqs = load("tnl2k", tnl2k, split="train")
    where = _lookup(seqs)
    rows = _rows(seqs, 2000, seed=3)
    inside = 0
    visible_rows = 0
    for row in rows:
        vp = row["visual_prompt"]
        seq, t = where[row["images"][0]]
        assert tuple(vp["template_region"]) == template_region(seq.target.boxes[t], W, H, 2.0)
        assert vp["color"] == "red" and vp["line_width"] == 3
        x1, y1, x2, y2 = vp["outline"]
        assert 0 <= x1 < x2 <= W and 0 <= y1 < y2 <= H
        seq, s = where[row["images"][1]]
        if seq.target.visible[s]:
            visible_rows += 1
            bx, by, bw, bh = seq.target.boxes[s]
            if x1 <= bx and y1 <= by and min(bx + bw, W) <= x2 + 0.05 and min(by + bh, H) <= y2 + 0.05:
                inside += 1
    # 0.9 of outlines keep the target inside; clipping at the border only ever helps
    assert 0.86 <= inside / visible_rows <= 0.97


def test_outline_size_is_scale_times_box_before_clipping():
    from vptracker.datasets.base import Sequence, Track
    box = (200.0, 150.0, 20.0, 10.0)
    seq = Sequence("s", "x", [f"/f{i}.jpg" for i in range(3)], 1000, 800, [Track(1, [box] * 3, [True] * 3)], "x")
    task = get_task("vptracker_sot", inbbox_ratio=1.0, **PROJECT)
    index = task.index([seq])
    scales = set()
    rng = random.Random(0)
    for _ in range(300):
        vp = task.sample(index, rng)["visual_prompt"]
        x1, y1, x2, y2 = vp["outline"]
        scale = (x2 - x1) / box[2]
        assert abs(scale - round(scale)) < 0.01 and abs((y2 - y1) / box[3] - scale) < 0.02
        scales.add(round(scale))
    assert scales == set(range(2, 9))


def test_rendered_images_pixel_checks(tnl2k):
    seqs = load("tnl2k", tnl2k, split="train")
    row = _rows(seqs, 1, seed=5)[0]
    prompt = VisualPrompt.from_json(row["visual_prompt"])
    template, search = render(Image.open(row["images"][0]), Image.open(row["images"][1]), prompt)
    x1, y1, x2, y2 = prompt.template_region
    assert template.size == (x2 - x1, y2 - y1)
    px = np.asarray(search)
    red = (px[..., 0] > 200) & (px[..., 1] < 60) & (px[..., 2] < 60)
    ox1, oy1, ox2, oy2 = (round(v) for v in prompt.outline)
    ox2, oy2 = min(ox2, W) - 1, min(oy2, H) - 1
    ys, xs = np.nonzero(red)
    assert xs.min() == ox1 and xs.max() == ox2 and ys.min() == oy1 and ys.max() == oy2
    assert red[oy1:oy1 + 3, ox1:ox2 + 1].all() and not red[oy1 + 3:oy2 - 2, ox1 + 3:ox2 - 2].any()


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


def test_real_otb_pairs_stay_inside_the_frames(shared_data):
    seqs = load("otb", shared_data / "otb")
    where = _lookup(seqs)
    for row in _rows(seqs, 60, seed=2):
        seq, s = where[row["images"][1]]
        ans = parse_vptracker(row["messages"][1]["content"])
        x1, y1, x2, y2 = ans.box
        assert 0 <= x1 < x2 <= seq.width and 0 <= y1 < y2 <= seq.height
        x, y, _, _ = seq.target.boxes[s]
        assert (x1, y1) == (round(max(x, 0)), round(max(y, 0)))
    row = _rows(seqs, 1, seed=9)[0]
    template, search = render(Image.open(row["images"][0]), Image.open(row["images"][1]),
                              VisualPrompt.from_json(row["visual_prompt"]))
    x1, y1, x2, y2 = row["visual_prompt"]["template_region"]
    original = Image.open(row["images"][0]).convert("RGB").crop((x1, y1, x2, y2))
    assert template.tobytes() == original.tobytes()
    assert search.size == Image.open(row["images"][1]).size
