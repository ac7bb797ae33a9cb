"""The synthetic MOT videos with language: the Refer-KITTI and BenSMOT layouts read back by the real
readers, rows from the real builders, and (slow) the toy sweeps' RMOT and caption columns."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from vptracker.boxes import parse_trajectories
from vptracker.datasets import load
from vptracker.datasets.refer_kitti import TEST_VIDEOS
from vptracker.datasets.synthetic import COLOURS, SHAPES, TEXTURES, SyntheticConfig, mot_scene, write_mot
from vptracker.datasets.synthetic_text import frame_directions, refer_kitti_video, write_bensmot, write_refer_kitti
from vptracker.tasks import get_task
from vptracker.tasks.prepare import generate

CFG = SyntheticConfig(width=64, height=64, frames=10, size_range=(0.2, 0.3), speed_range=(0.02, 0.05),
                      distractors=(0, 0))
SPLITS = {"train": 3, "test": 2}


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("text")
    write_mot(root / "mot", SPLITS, seed=3, cfg=CFG, people=3)
    write_refer_kitti(root / "rk", SPLITS, seed=3, cfg=CFG, people=3, expressions=3)
    write_bensmot(root / "bs", SPLITS, seed=3, cfg=CFG, people=3)
    return root


def _digest(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(path.relative_to(folder).as_posix().encode() + path.read_bytes())
    return h.hexdigest()


def test_the_same_arguments_write_the_same_bytes(sets, tmp_path):
    write_refer_kitti(tmp_path / "rk", SPLITS, seed=3, cfg=CFG, people=3, expressions=3)
    write_bensmot(tmp_path / "bs", SPLITS, seed=3, cfg=CFG, people=3)
    assert _digest(tmp_path / "rk") == _digest(sets / "rk")
    assert _digest(tmp_path / "bs") == _digest(sets / "bs")


def test_refer_kitti_layout_reads_back_with_true_expressions(sets):
    test = load("refer_kitti", sets / "rk", "test")
    train = load("refer_kitti", sets / "rk", "train")
    assert {s.scene for s in test} == set(TEST_VIDEOS[:2]) and not {s.scene for s in train} & set(TEST_VIDEOS)
    assert [refer_kitti_video("train", i) for i in range(7)] == ["0000", "0001", "0002", "0003", "0004", "0006",
                                                                  "0007"]
    with pytest.raises(ValueError, match="has 4 test videos"):
        refer_kitti_video("test", 4)
    mot = {s.name: s for s in load("synthetic_mot", sets / "mot", "test")}
    for seq in test:
        index = TEST_VIDEOS.index(seq.scene)
        scene = mot_scene(3, "test", index, CFG, 3)
        gt = mot[f"SYNTH-test-{index:02d}"]
        assert len(seq.frames) == CFG.frames and seq.frame_ids == list(range(CFG.frames))
        assert seq.language and seq.tracks
        words = seq.language.split()
        for track in seq.tracks:
            obj = scene.objects[track.id - 1]
            truth = next(t for t in gt.tracks if t.id == track.id)
            # labelled only where the object is annotated, with the MOT set's boxes
            assert not (track.visible & ~truth.visible).any()
            assert np.allclose(track.boxes[track.visible], truth.boxes[track.visible], atol=1e-3)
            for word in words:   # every attribute the expression names is the object's
                assert obj.colour == word if word in COLOURS else True
                assert obj.texture == word if word in TEXTURES else True
                assert obj.shape == word[:-1] if word[:-1] in SHAPES else True
            if words[-2] == "moving":
                moves = frame_directions(obj.path)
                assert all(words[-1] in moves[t] for t in np.flatnonzero(track.visible))
        # a subset: not every annotated object in every annotated frame
        assert sum(int(t.visible.sum()) for t in seq.tracks) < sum(int(t.visible.sum()) for t in gt.tracks)


def test_bensmot_layout_reads_back_with_one_caption_per_track(sets):
    test = load("bensmot", sets / "bs", "test")
    mot = {s.name: s for s in load("synthetic_mot", sets / "mot", "test")}
    assert sorted(s.name for s in test) == sorted(mot)
    for seq in test:
        gt = mot[seq.name]
        assert seq.scene == "shapes" and seq.caption and seq.caption.endswith(".")
        assert [t.id for t in seq.tracks] == list(range(1, len(gt.tracks) + 1))
        firsts = [int(np.flatnonzero(t.visible)[0]) for t in seq.tracks]
        assert firsts == sorted(firsts)   # ids by first appearance, as BenSMOT numbers its instances
        for track in seq.tracks:
            assert track.caption.startswith(("A ", "An ")) and track.category[:-1] in track.caption
        # the same frames as the MOT set: a MOT result file of one is a result file of the other
        assert Path(seq.frames[4]).read_bytes() == Path(gt.frames[4]).read_bytes()
        assert sorted(map(tuple, np.concatenate([t.boxes[t.visible] for t in seq.tracks]).tolist())) == \
            sorted(map(tuple, np.concatenate([t.boxes[t.visible] for t in gt.tracks]).tolist()))


def test_real_builders_make_rows(sets):
    rmot = get_task("omnipt_rmot", frames=2)
    seqs = load("refer_kitti", sets / "rk", "train")
    rows = [r for _, r in generate(rmot, {"s": rmot.index(seqs)}, {"s": 1}, 20, 0)]
    assert len(rows) == 20
    for row in rows:
        assert len(row["images"]) == 2 and "the " in row["messages"][0]["content"]
        answer = row["messages"][1]["content"]   # <None>: no referred object in the window
        assert answer == "<None>" or all(len(t) == 2 for t in parse_trajectories(answer))
    captions = get_task("omnipt_caption", frames=2)
    seqs = load("bensmot", sets / "bs", "train")
    rows = [r for _, r in generate(captions, {"b": captions.index(seqs)}, {}, None, 0)]
    assert len(rows) == len(seqs) + sum(len(s.tracks) for s in seqs)
    answers = {r["messages"][1]["content"] for r in rows}
    assert {s.caption for s in seqs} <= answers and {t.caption for s in seqs for t in s.tracks} <= answers


def test_a_row_is_finished_with_every_task_and_seeds_average_each(tmp_path, monkeypatch):
    from vptracker.eval.report import load_summaries, markdown_report
    from vptracker.sweep import run_sweep, toy
    from vptracker.sweep.results import seed_summary

    out = tmp_path / "sweep"
    for i, row in enumerate(("SFT", "MT+SFT", "SFT+RL", "MT+SFT+RL")):
        for seed in range(2):
            value = 10.0 * i + 2.0 * seed
            mot = {"HOTA": value, "DetA": value, "AssA": value, "MOTA": value, "IDF1": value}
            for task, summary in (("mot", {"COMBINED": mot, "parse_rate": 90.0}), ("rmot", {"COMBINED": mot}),
                                  ("smot", {"table_row": {"instance CIDEr": value / 100, "HOTA": value}})):
                path = seed_summary(out, row, seed, task)
                path.parent.mkdir(parents=True)
                path.write_text(json.dumps({"task": task, "benchmark": "x", "name": row, "per_sequence": {},
                                            **summary}))
            if row == "SFT+RL":   # a row without its RMOT summary is not finished
                seed_summary(out, row, seed, "rmot").unlink()
    ran = []
    monkeypatch.setattr(toy, "run_rows", lambda cfg, rows, seeds, o, echo, stream, pending, tasks: ran.append(
        (sorted({r.key for r in rows for s in range(seeds) if pending(r, s)}), tasks)))
    manifest = run_sweep("table6", ["quick=true", f"out={out}", "seeds=2"], echo=lambda line: None)
    assert ran == [(["SFT+RL"], ("mot", "rmot", "smot"))]
    assert list(manifest["rows"]) == ["SFT", "MT+SFT", "MT+SFT+RL"]
    entry = manifest["rows"]["MT+SFT"]
    assert [json.loads((out / p).read_text())["task"] for p in entry["summaries"]] == ["mot", "rmot", "smot"]
    smot = json.loads((out / entry["summaries"][2]).read_text())
    assert smot["table_row"]["instance CIDEr"] == pytest.approx(0.11) and smot["seeds"] == 2
    table = (out / "table.md").read_text()
    assert "| MT+SFT | s1 -> s2 -> s3 | qwen3_vl_4b | 2 | 11.00 ± 1.41 |" in table
    assert "| 90 | 11.00 ± 1.41 | 0.110 ± 0.014 | 51.89 | 33.26 | 0.44 |" in table   # the paper's MT+SFT
    assert "| SFT+RL | s1 -> s3 -> s4 | qwen3_vl_4b | 2 | missing |" in table
    report = markdown_report(load_summaries([str(out / "manifest.json")]))
    assert "0.11" in report   # Table 6's SMOT column, at the paper's two decimals


@pytest.mark.slow
def test_toy_sweeps_give_the_rmot_and_caption_columns(tmp_path):
    from vptracker.sweep import run_sweep

    small = ["quick=true", "stages=[stage3_sft]", "stage3_sft.max_steps=2", "infer.max_tokens=24"]
    out = tmp_path / "table6"
    manifest = run_sweep("table6", [*small, f"out={out}", "rows=[SFT]"], echo=lambda line: None)
    by_task = {json.loads((out / p).read_text())["task"]: json.loads((out / p).read_text())
               for p in manifest["rows"]["SFT"]["summaries"]}
    assert set(by_task) == {"mot", "rmot", "smot"}
    assert isinstance(by_task["rmot"]["COMBINED"]["HOTA"], float) and by_task["rmot"]["num_expressions"] >= 1
    assert isinstance(by_task["smot"]["table_row"]["instance CIDEr"], float)
    table = (out / "table.md").read_text()
    assert "RMOT HOTA" in table and "paper RMOT" in table and "missing" not in table
    out = tmp_path / "table7"
    manifest = run_sweep("table7", [*small, f"out={out}", "rows=[2]"], echo=lambda line: None)
    smot = next(json.loads((out / p).read_text()) for p in manifest["rows"]["2"]["summaries"]
                if json.loads((out / p).read_text())["task"] == "smot")
    for column in ("video METEOR", "video CIDEr", "instance METEOR", "instance CIDEr"):
        assert isinstance(smot["table_row"][column], float) and column in (out / "table.md").read_text()
    # the report places them in the paper's columns
    from vptracker.eval.report import load_summaries, markdown_report

    report = markdown_report(load_summaries([str(out / "manifest.json")]))
    assert "Table 7" in report
