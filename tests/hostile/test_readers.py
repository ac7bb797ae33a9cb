"""Hostile inputs through every dataset reader, on the official layouts the fixture writers produce.

Each family is written clean in ``tmp``; a malformed variant changes one file (one line, or the
file's encoding, or one JSON value) and must raise one :class:`DatasetFormatError` naming that file
and line (JSON: the key); a harmless variant (UTF-8 BOM, CRLF, trailing blank lines, spaces and
commas in the path) must give the same sequences as the clean data.
"""
from __future__ import annotations

import json
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import layouts as fx
import numpy as np
import pytest

from vptracker.datasets import DatasetFormatError, load
from vptracker.datasets.synthetic import SyntheticConfig, write_mot, write_sot

# The third row is absent and written 0,0,0,0, as the TNL2K toolkit and LaSOT write absent frames.
BOXES = [(10, 8, 20, 16), (12, 9, 20, 16), (0, 0, 0, 0), (14, 10, 18, 15)]
TINY = SyntheticConfig(width=32, height=32, frames=4)


@dataclass
class Family:
    build: Callable[[Path], dict[str, Path]]   # writes the clean layout under root; returns its files by role
    read: Callable[[Path], list]


def _tnl2k(root):
    seq = fx.write_tnl2k(root, "train", "seqA", BOXES, "a green car")
    return {"gt": seq / "groundtruth.txt", "lang": seq / "language.txt"}


def _tnl2k_toolkit(root):
    # one absent flag more than gt lines: the toolkit's 929-vs-930 sequence, cut on purpose
    seq = fx.write_tnl2k(root, "test", "seqA", BOXES, "a green car", annos=root / "annos", absent=[0, 0, 1, 0, 0])
    return {"gt": root / "annos" / "gt_rect" / "seqA.txt", "absent": root / "annos" / "absent" / "seqA.txt",
            "lang": seq / "language.txt", "seq_gt": seq / "groundtruth.txt"}


def _tnllt(root):
    seq = fx.write_tnllt(root, "lt_a", [(1.5, 2.25, 10.5, 8.0), (2, 3, 10, 8), (0, 0, 0, 0)], [0, 0, 1], "a bird")
    fx.write_tnllt(root, "lt_b", [(1, 1, 4, 4)], [0], "a cat")
    (root / "test.txt").write_text("lt_a\n")
    return {"gt": seq / "groundtruth.txt", "absent": seq / "absent_label.txt", "attributes": seq / "attributes.txt",
            "lang": seq / "language.txt", "list": root / "test.txt"}


def _lasot(root):
    seq = fx.write_lasot(root, "bird", 1, BOXES, [0, 1, 0, 0], [0, 0, 1, 0], "white bird flying")
    fx.write_lasot(root, "bird", 2, BOXES, [0] * 4, [0] * 4, "black bird")
    (root / "testing_set.txt").write_text("bird-1\n")
    return {"gt": seq / "groundtruth.txt", "occlusion": seq / "full_occlusion.txt",
            "out_of_view": seq / "out_of_view.txt", "lang": seq / "nlp.txt", "list": root / "testing_set.txt"}


def _otb(root):
    seq = fx.write_otb(root, "Walk", [b for b in BOXES if b[2]], sep=",")
    (seq / "cfg.json").write_text('{"startFrame": 1, "endFrame": 3}')
    return {"gt": seq / "groundtruth_rect.txt", "cfg": seq / "cfg.json"}


def _otb99(root):
    seq = fx.write_otb(root / "OTB_videos", "Biker", [b for b in BOXES if b[2]])
    (root / "OTB_query_test").mkdir()
    (root / "OTB_query_test" / "Biker.txt").write_text("a man riding a bike\n")
    return {"gt": seq / "groundtruth_rect.txt", "lang": root / "OTB_query_test" / "Biker.txt"}


MOT_PEOPLE = {1: {1: (5, 5, 10, 20), 2: (6, 5, 10, 20), 3: (7, 5, 10, 20)}, 2: {2: (30, 10, 8, 16)}}


def _mot17(root, name="MOT17-02-FRCNN", split="train", pad=6):
    rows = fx.mot_rows(MOT_PEOPLE) + [[1, 9, 40, 1, 5, 5, 0, 1, 1.0], [2, 7, 40, 1, 5, 5, 1, 7, 0.5]]
    seq = fx.write_mot(root, split, name, 3, rows, pad=pad)
    return {"gt": seq / "gt" / "gt.txt", "seqinfo": seq / "seqinfo.ini", "seqmap": root / f"{split}_seqmap.txt"}


def _refer_kitti(root):
    labels = {0: {3: (8, 4, 16, 8), 5: (40, 10, 20, 10)}, 1: {3: (10, 4, 16, 8)}, 2: {5: (42, 10, 20, 10)}}
    fx.write_refer_kitti(root, "0005", 3, labels, {"black cars, moving": {0: [3], 1: [3]}, "cars": {0: [3, 5], 2: [5]}})
    return {"label": root / "KITTI" / "labels_with_ids" / "image_02" / "0005" / "000000.txt",
            "json": root / "expression" / "0005" / "cars.json"}


def _crtrack(root):
    v1 = fx.mot_rows({1: {1: (1, 1, 5, 9), 2: (2, 1, 5, 9)}, 2: {1: (20, 5, 5, 9)}})
    v2 = fx.mot_rows({1: {2: (30, 2, 5, 9)}, 2: {1: (10, 5, 5, 9), 2: (11, 5, 5, 9)}})
    base = fx.write_crtrack(root, "test", "Gate2", {"View1": v1, "View2": v2}, 2,
                            {"A man in black, carrying a bag": [1], "people walking": [1, 2]}, per_query_gt=True)
    return {"gt": base / "images" / "test" / "Gate2_View1" / "gt" / "gt.txt",
            "query_gt": base / "gt_test" / "Gate2_people walking" / "gt" / "View1.txt",
            "queries": base / "tackled_text" / "Gate2.txt",
            "seqinfo": base / "images" / "test" / "Gate2_View1" / "seqinfo.ini"}


def _bensmot(root):
    rows = fx.mot_rows({2: {2: (30, 10, 8, 16), 3: (31, 10, 8, 16)}, 1: {1: (5, 5, 10, 20)}})
    seq = fx.write_bensmot(root, "train", "dancing", "vid01", 3, rows, "Two people dance.",
                           [("woman0", "A woman in red."), ("man1", "A man in a suit.")])
    return {"gt": seq / "gt" / "gt.txt", "captions": seq / "instance_captions.txt",
            "lang": seq / "video_caption.txt"}


def _synth_pedes(root):
    fx.write_synth_pedes(root, [(1, "a man in a red coat"), (2, "a woman with a bag")])
    return {"json": root / "synthpedes_dataset.json"}


def _synthetic_sot(root):
    write_sot(root, {"test": 1}, cfg=TINY)
    seq = next((root / "test").iterdir())
    return {"gt": seq / "groundtruth.txt", "absent": root / "annos" / "test" / "absent" / f"{seq.name}.txt",
            "lang": seq / "language.txt"}


def _synthetic_mot(root):
    write_mot(root, {"train": 1}, cfg=TINY, people=2)
    seq = next(p for p in (root / "train").iterdir())
    return {"gt": seq / "gt" / "gt.txt", "seqinfo": seq / "seqinfo.ini", "seqmap": root / "train_seqmap.txt"}


FAMILIES = {
    "tnl2k": Family(_tnl2k, lambda r: load("tnl2k", r, split="train")),
    "tnl2k_toolkit": Family(_tnl2k_toolkit, lambda r: load("tnl2k", r, split="test", annos=r / "annos")),
    "tnllt": Family(_tnllt, lambda r: load("tnllt", r, split="test")),
    "lasot": Family(_lasot, lambda r: load("lasot", r, split="test")),
    "otb": Family(_otb, lambda r: load("otb", r)),
    "otb99_lang": Family(_otb99, lambda r: load("otb99_lang", r, split="test")),
    "mot17": Family(_mot17, lambda r: load("mot17", r, split="train", min_visibility=0.25)),
    "dancetrack": Family(lambda r: _mot17(r, "dancetrack0004", "val", 8), lambda r: load("dancetrack", r, split="val")),
    "refer_kitti_v2": Family(_refer_kitti, lambda r: load("refer_kitti_v2", r, split="test")),
    "crtrack": Family(_crtrack, lambda r: load("crtrack", r, split="test")),
    "bensmot": Family(_bensmot, lambda r: load("bensmot", r, split="train")),
    "synth_pedes": Family(_synth_pedes, lambda r: load("synth_pedes", r)),
    "synthetic_sot": Family(_synthetic_sot, lambda r: load("synthetic_sot", r, split="test")),
    "synthetic_mot": Family(_synthetic_mot, lambda r: load("synthetic_mot", r, split="train")),
}

# ---------------------------------------------------------------------------------- malformed
# (family, file role, line, edit, what): ``edit`` maps the line's text to its new text, or is
# ("json", fn) changing the parsed JSON, or LATIN1 (an e-acute byte in Latin-1 at the end of line 1).
LATIN1 = "latin1"


def _col(i, value):
    """Replaces the ``i``-th value of a comma, tab or space separated line, keeping the separators."""
    def edit(line):
        parts = re.split(r"([,\t ]+)", line)
        parts[2 * i] = value
        return "".join(parts)
    return edit


_word = _col


BOX_EDITS = [("nan width", _col(2, "nan")), ("inf x", _col(0, "inf")), ("overflow to inf", _col(2, "1e999")),
             ("negative width", _col(2, "-5")), ("negative height", _col(3, "-1"))]
TABLE_EDITS = [("nan frame", _col(0, "nan")), ("inf frame", _col(0, "inf")), ("fractional frame", _col(0, "1.5")),
               ("nan id", _col(1, "nan")), ("fractional id", _col(1, "2.5")), ("negative width", _col(4, "-10")),
               ("nan x", _col(2, "nan")), ("inf height", _col(5, "inf"))]
FLAG_EDITS = [("nan flag", lambda _: "nan"), ("inf flag", lambda _: "inf"), ("flag 2", lambda _: "2"),
              ("flag 0.5", lambda _: "0.5")]
LINE_FLAG_EDITS = [("nan flag", _col(1, "nan")), ("inf flag", _col(1, "inf")), ("flag 2", _col(1, "2"))]


def _json_set(path: tuple, value):
    def edit(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        return data
    return edit


MALFORMED = []
for fam in ("tnl2k", "tnl2k_toolkit", "tnllt", "lasot", "otb", "otb99_lang", "synthetic_sot"):
    MALFORMED += [(fam, "gt", 2, edit, what) for what, edit in BOX_EDITS]
MALFORMED += [("tnl2k_toolkit", "seq_gt", 2, _col(2, "nan"), "nan width in the sequence's own gt")]
for fam, role in (("tnl2k_toolkit", "absent"), ("tnllt", "absent"), ("synthetic_sot", "absent")):
    MALFORMED += [(fam, role, 2, edit, what) for what, edit in FLAG_EDITS]
for role in ("occlusion", "out_of_view"):
    MALFORMED += [("lasot", role, 1, edit, what) for what, edit in LINE_FLAG_EDITS]
for fam, role in (("mot17", "gt"), ("dancetrack", "gt"), ("crtrack", "gt"), ("crtrack", "query_gt"),
                  ("bensmot", "gt"), ("synthetic_mot", "gt")):
    MALFORMED += [(fam, role, 2, edit, what) for what, edit in TABLE_EDITS]
MALFORMED += [("mot17", "gt", 2, _col(6, "2"), "flag 2"), ("mot17", "gt", 2, _col(8, "1.5"), "visibility 1.5"),
              ("mot17", "gt", 2, _col(7, "0.5"), "fractional class"),
              ("mot17", "seqinfo", 5, lambda _: "seqLength=nan", "seqLength nan"),
              ("mot17", "seqinfo", 5, lambda _: "seqLength=-3", "negative seqLength"),
              ("mot17", "seqinfo", 6, lambda _: "imWidth=0", "zero imWidth"),
              ("mot17", "seqinfo", 4, lambda _: "frameRate=inf", "frameRate inf"),
              ("synthetic_mot", "seqinfo", 5, lambda _: "seqLength=abc", "seqLength abc"),
              ("crtrack", "queries", 1, lambda line: line.replace(":1", ":1.5"), "fractional query id"),
              ("crtrack", "queries", 1, lambda line: line.replace(":1", ":-1"), "negative query id")]
MALFORMED += [("refer_kitti_v2", "label", 1, _word(k, v), what) for k, v, what in
              ((2, "nan", "nan x"), (4, "inf", "inf width"), (4, "-0.1", "negative width"),
               (1, "nan", "nan track id"), (1, "3.5", "fractional track id"), (2, "1e999", "overflow to inf"))]
MALFORMED += [("refer_kitti_v2", "json", None, ("json", fn), what) for fn, what in (
    (_json_set(("label", "0"), 3), "ids not a list"), (_json_set(("label", "0"), ["3"]), "ids as strings"),
    (_json_set(("label", "0"), [3.5]), "fractional id"), (_json_set(("label", "0"), [True]), "boolean id"),
    (_json_set(("label", "0"), [float("nan")]), "NaN id"), (_json_set(("label",), [[0, 3]]), "label a list"),
    (_json_set(("label", "zero"), [3]), "frame key not a number"), (_json_set(("sentence",), 5), "sentence a number"),
    (_json_set(("raw_sentence",), ["cars"]), "raw_sentence a list"), (lambda d: [d], "top level a list"))]
MALFORMED += [("synth_pedes", "json", None, ("json", fn), what) for fn, what in (
    (_json_set((0, "captions"), "a man"), "captions a string"), (_json_set((0, "captions"), ["ok", 5]), "caption a number"),
    (_json_set((0, "file_path"), 7), "file_path a number"), (_json_set((1,), "entry"), "entry a string"),
    (_json_set((0, "id"), float("inf")), "id Infinity"), (lambda d: {"entries": d}, "top level an object"))]
MALFORMED += [("otb", "cfg", None, ("json", fn), what) for fn, what in (
    (_json_set(("startFrame",), "abc"), "startFrame a string"), (_json_set(("startFrame",), 1.5), "startFrame 1.5"),
    (_json_set(("startFrame",), float("nan")), "startFrame NaN"), (_json_set(("startFrame",), True), "startFrame true"),
    (lambda d: [d], "top level a list"))]
for fam, roles in {"tnl2k": ("lang", "gt"), "tnl2k_toolkit": ("lang", "absent"), "tnllt": ("lang", "list"),
                   "lasot": ("lang", "list", "occlusion"), "otb": ("gt", "cfg"), "otb99_lang": ("lang",),
                   "mot17": ("seqinfo", "seqmap", "gt"), "refer_kitti_v2": ("label", "json"),
                   "crtrack": ("queries", "query_gt"), "bensmot": ("captions", "lang"), "synth_pedes": ("json",),
                   "synthetic_sot": ("lang", "absent"), "synthetic_mot": ("seqinfo", "seqmap")}.items():
    MALFORMED += [(fam, role, 1, LATIN1, "Latin-1 byte") for role in roles]


def apply_edit(path: Path, line: int | None, edit) -> None:
    if edit == LATIN1:
        data = path.read_bytes()
        cut = data.index(b"\n") if b"\n" in data else len(data)
        path.write_bytes(data[:cut] + b"caf\xe9" + data[cut:])
    elif isinstance(edit, tuple):
        path.write_text(json.dumps(edit[1](json.loads(path.read_text()))))
    else:
        lines = path.read_text().split("\n")
        lines[line - 1] = edit(lines[line - 1])
        path.write_text("\n".join(lines))


def _case_id(case):
    return f"{case[0]}-{case[1]}-{case[4]}".replace(" ", "_")


@pytest.mark.parametrize("case", MALFORMED, ids=_case_id)
def test_malformed_input_names_file_and_line(tmp_path, case):
    family, role, line, edit, _ = case
    files = FAMILIES[family].build(tmp_path)
    apply_edit(files[role], line, edit)
    with pytest.raises(DatasetFormatError) as err:
        FAMILIES[family].read(tmp_path)
    where = f"{files[role]}:{line}:" if line is not None else f"{files[role]}:"
    assert str(err.value).startswith(where), str(err.value)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------------------- harmless
def _text_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.suffix in (".txt", ".ini", ".json")]


def _bom(root):
    for p in _text_files(root):
        p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())


def _crlf(root):
    for p in _text_files(root):
        p.write_bytes(p.read_bytes().replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))


def _trailing_blank_lines(root):
    for p in _text_files(root):
        p.write_bytes(p.read_bytes() + b"\n\n  \n")


HARMLESS = {"path only": lambda r: None, "bom": _bom, "crlf": _crlf, "trailing blank lines": _trailing_blank_lines,
            "all at once": lambda r: (_crlf(r), _trailing_blank_lines(r), _bom(r))}


def summary(seqs, root: Path) -> list[dict]:
    """Everything a reader returns, with paths relative to ``root`` so that two roots compare."""
    def rel(value):
        return value.replace(str(root), "<root>") if isinstance(value, str) else value
    out = []
    for s in seqs:
        out.append({"name": s.name, "dataset": s.dataset, "frames": [rel(f) for f in s.frames], "size": (s.width, s.height),
                    "language": s.language, "caption": s.caption, "view": s.view, "scene": s.scene,
                    "frame_ids": s.frame_ids, "attributes": {k: np.asarray(v).tolist() for k, v in s.attributes.items()},
                    "captions": s.captions, "expression": s.expression, "missing_frames": s.missing_frames,
                    "folder": rel(s.folder),
                    "meta": json.loads(rel(json.dumps(s.meta, sort_keys=True, default=str))),
                    "tracks": [(t.id, t.boxes.tolist(), t.visible.tolist(), t.caption, t.category) for t in s.tracks]})
    return out


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("variant", sorted(HARMLESS))
def test_harmless_variants_read_like_clean_data(tmp_path, family, variant):
    clean, odd = tmp_path / "clean", tmp_path / "my data, v2 (copy)"
    FAMILIES[family].build(clean)
    shutil.copytree(clean, odd)
    HARMLESS[variant](odd)
    assert summary(FAMILIES[family].read(odd), odd) == summary(FAMILIES[family].read(clean), clean)


@pytest.mark.parametrize("family", sorted(FAMILIES))
def test_clean_layout_reads(tmp_path, family):
    FAMILIES[family].build(tmp_path)
    assert FAMILIES[family].read(tmp_path)


# ---------------------------------------------------------------------------------- the CLI
@pytest.mark.parametrize("command", ["prepare", "visualize"])
def test_cli_reports_a_malformed_file_in_one_line_and_exits_2(tmp_path, capsys, command):
    from vptracker.cli import main

    files = FAMILIES["tnl2k"].build(tmp_path / "data")
    apply_edit(files["gt"], 2, _col(2, "inf"))
    common = ["--dataset", "tnl2k", "--root", str(tmp_path / "data"), "--split", "train", "--out", str(tmp_path / "out")]
    extra = {"prepare": ["--task", "vptracker_sot", "--num-samples", "4", "--no-progress"],
             "visualize": ["--pred", str(tmp_path)]}[command]
    assert main([command, *common, *extra]) == 2
    err = capsys.readouterr().err
    assert err == f"vptracker {command}: error: {files['gt']}:2: expected 4 numbers, all finite, got '12,9,inf,16'\n"


def test_boxes_past_the_image_border_are_reported_not_silent(tmp_path):
    # 64x48 frames: the initial box pokes out on the left, the third box on the right and bottom
    fx.write_tnl2k(tmp_path, "train", "edge", [(-5, 8, 20, 16), (12, 9, 20, 16), (50, 40, 20, 16)], "a car")
    with pytest.warns(UserWarning, match=r"tnl2k: 2 of 3 visible boxes reach past the image border \(1 of them the "
                      r"initial box .* edge frame 1 track 1: \[-5.0, 8.0, 20.0, 16.0\] in a 64x48 image\)"):
        seq = load("tnl2k", tmp_path, split="train")[0]
    # kept as annotated: the toolkits score against the boxes as given
    assert seq.target.boxes[0].tolist() == [-5, 8, 20, 16] and seq.meta["boxes_outside_image"] == 2


# ---------------------------------------------------------------------------------- real files
def test_real_annotations_read_the_same_with_bom_crlf_and_blank_lines_and_refuse_a_nan(shared_data, tmp_path):
    """Real TNL2K toolkit files (20 sequences, the 929-vs-930 one among them), real OTB and CRTrack gt."""
    import tarfile

    from vptracker.datasets.crtrack import read_query_gt
    from vptracker.datasets.sot import read_toolkit_annotation

    with tarfile.open(shared_data / "tnl2k" / "test_annos.tar.gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        names = sorted(n[len("annos/gt_rect/"):-4] for n in members if n.startswith("annos/gt_rect/"))[::35]
        names.append("advSamp_monitor_bikeyellow")  # the 929 gt lines vs 930 absent flags sequence
        tar.extractall(tmp_path / "tnl2k", filter="data",
                       members=[members[f"annos/{d}/{n}.txt"] for n in names for d in ("gt_rect", "absent")])
    annos = tmp_path / "tnl2k" / "annos"
    clean = {n: read_toolkit_annotation(annos, n) for n in names}
    assert len(clean) == 21
    shutil.copytree(shared_data / "otb" / "Couple", tmp_path / "otb" / "Couple")
    query = next((shared_data / "crmot_in_domain" / "gt").iterdir())
    shutil.copytree(query, tmp_path / "crtrack" / "q, with a comma")
    otb_clean = summary(load("otb", tmp_path / "otb"), tmp_path / "otb")
    cr_clean = read_query_gt(tmp_path / "crtrack" / "q, with a comma")
    HARMLESS["all at once"](tmp_path)
    for n, (boxes, visible) in clean.items():
        again = read_toolkit_annotation(annos, n)
        assert np.array_equal(again[0], boxes) and np.array_equal(again[1], visible), n
    assert summary(load("otb", tmp_path / "otb"), tmp_path / "otb") == otb_clean
    cr_again = read_query_gt(tmp_path / "crtrack" / "q, with a comma")
    assert {v: [(t.id, t.boxes.tolist()) for t in ts] for v, ts in cr_again.items()} == \
           {v: [(t.id, t.boxes.tolist()) for t in ts] for v, ts in cr_clean.items()}
    gt = annos / "gt_rect" / f"{names[0]}.txt"
    apply_edit(gt, 3, _col(2, "nan"))
    with pytest.raises(DatasetFormatError, match=rf"{re.escape(str(gt))}:3: expected 4 numbers, all finite"):
        read_toolkit_annotation(annos, names[0])
