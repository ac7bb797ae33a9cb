"""Sequence's typed fields: the readers write what the tasks, the runner and the evaluation read.

``Sequence.meta`` holds free-form extras only; data that code reads (missing frames, the Refer-KITTI
expression, SYNTH-PEDES captions, the sequence folder) is a field, written by the real readers from
real layouts (``tests/layouts.py``).
"""
from __future__ import annotations

import ast
from pathlib import Path

import layouts as fx
import pytest

import vptracker
from vptracker.datasets import load

PACKAGE = Path(vptracker.__file__).parent


def _meta_reads(tree: ast.AST) -> list[int]:
    """Lines reading ``<x>.meta[...]`` or calling ``<x>.meta.get(...)`` (writes are allowed)."""
    lines = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load)
                and isinstance(node.value, ast.Attribute) and node.value.attr == "meta"):
            lines.append(node.lineno)
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "get"
                and isinstance(node.func.value, ast.Attribute) and node.func.value.attr == "meta"):
            lines.append(node.lineno)
    return lines


def test_no_package_code_reads_sequence_meta():
    found = {str(p.relative_to(PACKAGE)): _meta_reads(ast.parse(p.read_text()))
             for p in sorted(PACKAGE.rglob("*.py"))}
    assert {k: v for k, v in found.items() if v} == {}


def test_the_meta_check_finds_reads():
    tree = ast.parse('a = seq.meta["video"]\nb = s.meta.get("scene")\nseq.meta["n"] = 1\n')
    assert _meta_reads(tree) == [1, 2]


def _mot(root: Path) -> Path:
    return fx.write_mot(root, "train", "MOT17-02", 3, fx.mot_rows({1: {1: (1, 1, 4, 4), 3: (2, 1, 4, 4)}})) \
        / "img1" / "000002.jpg"


def _crtrack(root: Path) -> Path:
    fx.write_crtrack(root, "test", "Gate2", {"View1": fx.mot_rows({1: {1: (1, 1, 5, 9)}, 2: {3: (2, 1, 5, 9)}})}, 3,
                     {"a man": [1], "people": [1, 2]})
    return root / "CRTrack_In-domain" / "images" / "test" / "Gate2_View1" / "img1" / "000002.jpg"


def _refer_kitti(root: Path) -> Path:
    fx.write_refer_kitti(root, "0005", 3, {0: {3: (8, 4, 16, 8)}, 2: {3: (10, 4, 16, 8)}}, {"cars": {0: [3], 2: [3]}})
    return root / "KITTI" / "training" / "image_02" / "0005" / "000001.png"


def _bensmot(root: Path) -> Path:
    seq = fx.write_bensmot(root, "train", "dancing", "vid01", 3, fx.mot_rows({1: {1: (5, 5, 10, 20),
                                                                                3: (6, 5, 10, 20)}}),
                           "A person dances.", [("woman0", "A woman in red.")])
    return seq / "imgs" / "002.jpg"


READERS = {"mot17": (_mot, "train"), "crtrack": (_crtrack, "test"), "refer_kitti": (_refer_kitti, None),
           "bensmot": (_bensmot, "train")}


@pytest.mark.parametrize("dataset", sorted(READERS))
def test_a_missing_frame_is_a_field_of_every_sequence(tmp_path, dataset):
    write, split = READERS[dataset]
    gone = write(tmp_path)
    gone.unlink()
    with pytest.warns(UserWarning, match="missing"):
        seqs = load(dataset, tmp_path, split=split, allow_missing=True)
    assert seqs and all(s.missing_frames == [1] for s in seqs)
    assert all(s.frames[1] == str(gone) and "missing_frames" not in s.meta for s in seqs)


def test_readers_write_the_fields_that_run_and_eval_read(tmp_path):
    fx.write_refer_kitti(tmp_path / "rk", "0005", 2, {0: {3: (8, 4, 16, 8)}}, {"black-cars, moving": {0: [3]}})
    expr = load("refer_kitti_v2", tmp_path / "rk")[0]
    # results go to <video>/<expression>/predict.txt: the video is the scene, the expression the file stem
    assert (expr.scene, expr.expression, expr.language) == ("0005", "black-cars, moving", "black cars, moving")
    assert set(expr.meta) == {"raw_sentence", "ignore", "boxes_outside_image"}

    _bensmot(tmp_path / "smot")
    smot = load("bensmot", tmp_path / "smot", split="train")[0]
    # scoring copies <folder>/gt/gt.txt; the category is the scene
    assert (Path(smot.folder) / "gt" / "gt.txt").is_file() and smot.scene == "dancing"
    assert smot.missing_frames == [] and smot.caption == "A person dances."

    _mot(tmp_path / "mot")
    mot = load("mot17", tmp_path / "mot", split="train")[0]
    assert Path(mot.folder).name == "MOT17-02" and set(mot.meta) == {"has_gt", "frame_rate", "boxes_outside_image"}

    fx.write_synth_pedes(tmp_path / "pedes", [(7, "a man in a red coat")])
    pedes = load("synth_pedes", tmp_path / "pedes")[0]
    assert pedes.captions == ["a man in a red coat", "a man in a red coat."] and pedes.caption == pedes.captions[0]
