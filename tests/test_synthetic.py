"""The synthetic benchmark: deterministic, in the official layouts, and hard in the intended ways."""
from __future__ import annotations

import hashlib

import numpy as np
import pytest

from vptracker.datasets import load
from vptracker.datasets.synthetic import COLOURS, SyntheticConfig, make_sot_sequence, write_mot, write_sot

SMALL = SyntheticConfig(width=96, height=80, frames=24)


def _digest(root):
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_sot_is_deterministic_and_seed_dependent(tmp_path):
    a = write_sot(tmp_path / "a", {"train": 2, "test": 1}, seed=3, cfg=SMALL)
    b = write_sot(tmp_path / "b", {"train": 2, "test": 1}, seed=3, cfg=SMALL)
    c = write_sot(tmp_path / "c", {"train": 2, "test": 1}, seed=4, cfg=SMALL)
    assert _digest(a) == _digest(b)
    assert _digest(a) != _digest(c)


def test_sot_writes_the_tnl2k_layout(tmp_path):
    root = write_sot(tmp_path, {"train": 2, "test": 3}, seed=0, cfg=SMALL)
    for split, count in (("train", 2), ("test", 3)):
        seqs = sorted((root / split).iterdir())
        assert len(seqs) == count
        for seq in seqs:
            frames = sorted((seq / "imgs").glob("*.jpg"))
            assert len(frames) == SMALL.frames and frames[0].name == "00001.jpg"
            gt = [line.split(",") for line in (seq / "groundtruth.txt").read_text().splitlines()]
            assert len(gt) == SMALL.frames and all(len(row) == 4 and all(v.isdigit() for v in row) for row in gt)
            assert (seq / "language.txt").read_text().strip().startswith("the ")
            absent = (root / "annos" / split / "absent" / f"{seq.name}.txt").read_text().split()
            assert len(absent) == SMALL.frames
            # Absent frames hold 0,0,0,0 as in TNL2K; present ones a positive box inside the image.
            for row, flag in zip(gt, absent):
                x, y, w, h = map(int, row)
                if flag == "1":
                    assert (x, y, w, h) == (0, 0, 0, 0)
                else:
                    assert w > 0 and h > 0 and x + w <= SMALL.width and y + h <= SMALL.height


def test_sot_reader_round_trip(tmp_path):
    write_sot(tmp_path, {"test": 2}, seed=1, cfg=SMALL)
    seqs = load("synthetic_sot", tmp_path, "test")
    assert [s.name for s in seqs] == ["synth_test_0000", "synth_test_0001"]
    for k, seq in enumerate(seqs):
        name, frames, gt, visible, language = make_sot_sequence(1, "test", k, SMALL)
        assert seq.name == name and seq.language == language
        assert (seq.width, seq.height) == (SMALL.width, SMALL.height) and len(seq) == SMALL.frames
        np.testing.assert_array_equal(seq.target.boxes, gt)
        np.testing.assert_array_equal(seq.target.visible, visible)
        assert seq.target.visible[0]


def test_language_names_the_target_colour_and_target_is_drawn_in_it():
    name, frames, gt, visible, language = make_sot_sequence(0, "train", 5, SMALL)
    colour = language.split()[1]
    assert colour in COLOURS
    x, y, w, h = (int(v) for v in gt[0])
    patch = frames[0][y:y + h, x:x + w].reshape(-1, 3).astype(int)
    # Some pixel of the first-frame box carries the named colour (textures darken the rest).
    assert (np.abs(patch - np.array(COLOURS[colour])).sum(1) < 40).any()


def test_sequences_contain_the_hard_cases():
    """Across a modest set: absent frames (occlusion or leaving the frame) and colour variety."""
    cfg = SyntheticConfig(width=96, height=96, frames=40, leave_prob=0.5, occluder_prob=0.8)
    absent = 0
    colours = set()
    for k in range(16):
        _, _, gt, visible, language = make_sot_sequence(0, "train", k, cfg)
        absent += int((~visible).sum())
        colours.add(language.split()[1])
        assert visible[0]
    assert absent > 0
    assert len(colours) >= 4


def test_mot_writes_motchallenge_layout_and_reader_loads_it(tmp_path):
    root = write_mot(tmp_path, {"train": 2}, seed=0, cfg=SMALL, people=3)
    assert (root / "train_seqmap.txt").read_text().splitlines() == ["name", "SYNTH-train-00", "SYNTH-train-01"]
    seq_dir = root / "train" / "SYNTH-train-00"
    assert (seq_dir / "img1" / "000001.jpg").is_file()
    assert f"seqLength={SMALL.frames}" in (seq_dir / "seqinfo.ini").read_text()
    rows = [line.split(",") for line in (seq_dir / "gt" / "gt.txt").read_text().splitlines()]
    assert rows and all(len(r) == 9 and r[6] == "1" and r[7] == "1" for r in rows)
    assert all(1 <= int(r[0]) <= SMALL.frames and 1 <= int(r[1]) <= 3 for r in rows)
    seqs = load("synthetic_mot", root, "train")
    assert len(seqs) == 2 and 1 <= len(seqs[0].tracks) <= 3
    track = seqs[0].tracks[0]
    assert track.boxes.shape == (SMALL.frames, 4) and track.visible.any()


def test_reader_names_missing_split(tmp_path):
    with pytest.raises(ValueError, match="split folder"):
        load("synthetic_sot", tmp_path, "test")


def test_official_readers_load_the_synthetic_layouts(tmp_path):
    """The TNL2K and MOTChallenge readers see exactly what the synthetic readers see."""
    write_sot(tmp_path / "sot", {"test": 3}, seed=0, cfg=SMALL)
    write_mot(tmp_path / "mot", {"train": 2}, seed=0, cfg=SMALL, people=3)
    official = load("tnl2k", tmp_path / "sot", "test", annos=tmp_path / "sot" / "annos" / "test")
    ours = load("synthetic_sot", tmp_path / "sot", "test")
    assert [s.name for s in official] == [s.name for s in ours]
    for a, b in zip(official, ours):
        np.testing.assert_array_equal(a.target.boxes, b.target.boxes)
        np.testing.assert_array_equal(a.target.visible, b.target.visible)
        assert a.language == b.language and len(a.frames) == len(b.frames)
    for name in ("mot17", "dancetrack"):
        official = load(name, tmp_path / "mot", "train")
        ours = load("synthetic_mot", tmp_path / "mot", "train")
        assert [len(s.tracks) for s in official] == [len(s.tracks) for s in ours]
        for s1, s2 in zip(official, ours):
            for t1, t2 in zip(s1.tracks, s2.tracks):
                np.testing.assert_array_equal(t1.boxes[t1.visible], t2.boxes[t2.visible])


def test_contrast_knobs_make_the_set_easier_to_see_and_keep_the_annotations():
    """``background_contrast`` / ``texture_contrast`` only change how far pixels stray from plain
    colours (the CPU demo lowers them); the paths, boxes and language stay the same."""
    easy = SyntheticConfig(width=96, height=80, frames=8, occluder_prob=0.0, distractors=(0, 0),
                           background_contrast=0.0, texture_contrast=0.0)
    hard = SyntheticConfig(width=96, height=80, frames=8, occluder_prob=0.0, distractors=(0, 0))
    (_, f_easy, gt_easy, vis_easy, lang_easy), (_, f_hard, gt_hard, _, lang_hard) = (
        make_sot_sequence(2, "train", k, c) for k, c in ((0, easy), (0, hard)))
    np.testing.assert_array_equal(gt_easy, gt_hard)
    assert lang_easy == lang_hard
    x, y, w, h = (int(v) for v in gt_easy[0])
    inside = np.zeros(f_easy[0].shape[:2], bool)
    inside[y:y + h, x:x + w] = True
    # Away from the objects the easy background is flat grey (only the per-frame sensor noise).
    far = np.ones_like(inside)
    for box in gt_easy:
        bx, by, bw, bh = (int(v) for v in box)
        far[max(by - 4, 0):by + bh + 4, max(bx - 4, 0):bx + bw + 4] = False
    assert f_easy[0][far].std() < 8 < f_hard[0][far].std()
    # The easy target is one colour, the named one (up to the sensor noise).
    colour = np.array(COLOURS[lang_easy.split()[1]])
    patch = f_easy[0][y + h // 2 - 1:y + h // 2 + 2, x + w // 2 - 1:x + w // 2 + 2].reshape(-1, 3).astype(int)
    assert (np.abs(patch - colour).sum(1) < 30).all()
