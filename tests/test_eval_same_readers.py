"""Training and evaluation read a benchmark with the same reader: same sequences, captions, visibility.

Also the registries behind ``vptracker eval`` (refusing duplicate names) and GOT-10k's AO/SR, the
metric added through them, against values computed by hand.
"""
from __future__ import annotations

import json
import time

import layouts as fx
import numpy as np
import pytest

from vptracker.datasets import load
from vptracker.datasets.base import DatasetFormatError, register
from vptracker.eval.sot import SOT_PROTOCOLS, get_protocol
from vptracker.eval.sot_eval import evaluate_sot, sot_ground_truth
from vptracker.registry import Registry


class _NoSynonyms:
    def synsets(self, *args, **kwargs):
        return []


def _same_sequences(train, evaluation):
    assert [s.name for s in train] == [s.name for s in evaluation]
    for a, b in zip(train, evaluation):
        assert len(a) == len(b) and len(a.tracks) == len(b.tracks)
        for ta, tb in zip(a.tracks, b.tracks):
            assert ta.id == tb.id and ta.caption == tb.caption
            assert np.array_equal(ta.boxes, tb.boxes) and np.array_equal(ta.visible, tb.visible)
        assert a.caption == b.caption and a.language == b.language


def test_bensmot_captions_follow_gt_ids_in_training_and_evaluation(tmp_path):
    """gt id 2 appears first; SMOTer's rule: the k-th caption line is gt id k (not first frame)."""
    from vptracker.eval.smot import bensmot_sequences, evaluate_smot

    rows = fx.mot_rows({2: {f: (30, 10, 8, 16) for f in (1, 2, 3)}, 1: {f: (5, 5, 10, 20) for f in (2, 3)}})
    seq = fx.write_bensmot(tmp_path / "data", "test", "dancing", "vid01", 3, rows, "Two people dance.",
                           [("man0", "A man."), ("woman0", "A woman.")])
    train = load("bensmot", tmp_path / "data", split="test")
    evaluation = bensmot_sequences(tmp_path / "data" / "test")
    _same_sequences(train, evaluation)
    assert {t.id: t.caption for t in train[0].tracks} == {1: "A man.", 2: "A woman."}
    assert len(evaluation[0].frames) == 3 and evaluation[0].width == 0  # annotation-first: no image opened

    # Scoring uses the same mapping: perfect tracks whose captions follow that mapping score 1.
    res = tmp_path / "res"
    res.mkdir()
    (res / "vid01.txt").write_text((seq / "gt" / "gt.txt").read_text())
    (res / "video_captions.json").write_text(json.dumps({"vid01": "Two people dance."}))
    (res / "instance_captions.json").write_text(json.dumps({"vid01/1": "A man.", "vid01/2": "A woman."}))
    r = evaluate_smot(tmp_path / "data" / "test", res, "smoter", wordnet=_NoSynonyms())
    assert r["tracking"]["COMBINED"]["HOTA"] == pytest.approx(100.0)
    assert {k: v["BLEU-1"] for k, v in r["instance_caption"]["per_caption"].items()} == \
        {"vid01/1": pytest.approx(1.0), "vid01/2": pytest.approx(1.0)}


def test_bensmot_instance_named_twice_is_an_error(tmp_path):
    fx.write_bensmot(tmp_path, "test", "c", "v", 2, fx.mot_rows({1: {1: (1, 1, 4, 4)}, 2: {2: (1, 1, 4, 4)}}),
                     "x", [("woman0", "one"), ("woman0", "two")])
    with pytest.raises(DatasetFormatError, match=r"instance_captions\.txt:2: expected each instance named once"):
        load("bensmot", tmp_path, split="test")


def test_tnl2k_without_absent_flags_one_visibility_rule(tmp_path):
    """Absent = a 0,0,0,0 row (what the toolkit's absent files say); a present zero-area box stays present."""
    boxes = [(10, 10, 20, 20), (0, 0, 0, 0), (12, 10, 0, 20), (14, 10, 20, 20)]
    fx.write_tnl2k(tmp_path / "ds", "test", "seqA", boxes, "the red car", annos=tmp_path / "annos",
                   absent=[0, 1, 0, 0])
    train = load("tnl2k", tmp_path / "ds", split="test")
    evaluation = sot_ground_truth(tmp_path / "ds" / "test")
    _same_sequences(train, evaluation)
    assert train[0].target.visible.tolist() == [True, False, True, True]
    # The toolkit folder (absent file) and training with annos= agree with the rule as well.
    toolkit = sot_ground_truth(tmp_path / "annos")
    assert toolkit[0].target.visible.tolist() == [True, False, True, True]
    with_annos = load("tnl2k", tmp_path / "ds", split="test", annos=tmp_path / "annos")
    assert np.array_equal(with_annos[0].target.boxes, toolkit[0].target.boxes)
    # Annotation-first frames are the real ones once asked for.
    assert list(evaluation[0].frames) == train[0].frames and evaluation[0].meta["annotation_only"]


def test_lasot_tnllt_otb_read_alike(tmp_path, shared_data):
    fx.write_lasot(tmp_path / "lasot", "cat", 1, [(1, 1, 5, 5)] * 3, [0, 1, 0], [0, 0, 1], "a cat")
    fx.write_tnllt(tmp_path / "tnllt", "seq_001", [(1, 1, 5, 5), (0, 0, 0, 0)], [0, 1], "a dog")
    for name, root in (("lasot", tmp_path / "lasot"), ("tnllt", tmp_path / "tnllt"), ("otb", shared_data / "otb")):
        _same_sequences(load(name, root), sot_ground_truth(root))


def test_toolkit_annotations_load_without_images(shared_data, tmp_path):
    import tarfile

    with tarfile.open(shared_data / "tnl2k" / "test_annos.tar.gz") as tar:
        tar.extractall(tmp_path, filter="data")
    start = time.perf_counter()
    sequences = sot_ground_truth(tmp_path / "annos")
    seconds = time.perf_counter() - start
    assert len(sequences) == 700 and sum(len(s) for s in sequences) == 516038
    assert all(s.width == 0 and s.frames._paths is None for s in sequences)  # no folder listed
    assert seconds < 20  # ~1 s here; the line-by-line reader took ~3.5 s
    with pytest.raises(DatasetFormatError, match="the toolkit folder holds none"):
        sequences[0].frames[0]


def test_registries_refuse_duplicate_names():
    reg = Registry("thing")
    reg.add("a", 1)
    with pytest.raises(ValueError, match="thing 'a' is already registered"):
        reg.add("a", 2)
    with pytest.raises(ValueError, match="SOT protocol 'tnl2k' is already registered"):
        SOT_PROTOCOLS.add("tnl2k", "somewhere:Else")
    with pytest.raises(ValueError, match="dataset 'tnl2k' is already registered"):
        register("tnl2k")(lambda root, split=None: [])
    with pytest.raises(ValueError, match="unknown SOT protocol 'vot'"):
        get_protocol("vot")


def _write_got10k(root, boxes, cover, resolution=None):
    seq = root / "val" / "GOT-10k_Val_000001"
    seq.mkdir(parents=True)
    (seq / "groundtruth.txt").write_text("".join(",".join(map(str, b)) + "\n" for b in boxes))
    (seq / "cover.label").write_text("".join(f"{c}\n" for c in cover))
    (seq / "absence.label").write_text("".join(f"{int(c == 0)}\n" for c in cover))
    if resolution:
        (seq / "meta_info.ini").write_text(f"[METAINFO]\nresolution: ({resolution[0]}, {resolution[1]})\n")
    (root / "val" / "list.txt").write_text("GOT-10k_Val_000001\n")
    return seq


def test_got10k_ao_sr_hand_computed(tmp_path):
    gt = [(0, 0, 10, 10)] * 5 + [(90, 0, 20, 10)]
    cover = [8, 8, 8, 8, 0, 8]
    _write_got10k(tmp_path, gt, cover, resolution=(100, 50))
    res = tmp_path / "res"
    res.mkdir()
    pred = [(50, 50, 5, 5),   # frame 1: replaced by nothing, left out (the given box)
            (0, 0, 10, 10),   # IoU 1
            (0, 0, 10, 5),    # IoU 0.5 (not > 0.5)
            (0, 0, 10, 8),    # IoU 0.8
            (40, 40, 5, 5),   # absent (cover 0): left out
            (90, 0, 10, 10)]  # gt clipped to 90..100 (IoU 1, unclipped 0.5)
    (res / "GOT-10k_Val_000001.txt").write_text("".join(",".join(map(str, b)) + "\n" for b in pred))
    sequences = sot_ground_truth(tmp_path, split="val")
    assert sequences[0].dataset == "got10k" and (sequences[0].width, sequences[0].height) == (100, 50)
    s = evaluate_sot(sequences, res, "got10k")
    ious = np.array([1.0, 0.5, 0.8, 1.0])
    assert s["ao"] == pytest.approx(100 * ious.mean()) and s["ao"] == pytest.approx(82.5)
    assert s["sr50"] == pytest.approx(75.0) and s["sr75"] == pytest.approx(75.0)
    assert s["num_frames"] == 4 and s["per_sequence"]["GOT-10k_Val_000001"]["frames"] == 4
    pred[3] = (0, 0, 10, 7)  # IoU 0.7: below 0.75, above 0.5
    (res / "GOT-10k_Val_000001.txt").write_text("".join(",".join(map(str, b)) + "\n" for b in pred))
    s = evaluate_sot(sequences, res, "got10k")
    assert s["ao"] == pytest.approx(80.0) and s["sr50"] == pytest.approx(75.0) and s["sr75"] == pytest.approx(50.0)


def test_got10k_through_cli_and_report(tmp_path, capsys):
    from vptracker.cli import main

    _write_got10k(tmp_path / "got", [(0, 0, 10, 10)] * 3, [8, 8, 8])
    res = tmp_path / "res"
    res.mkdir()
    (res / "GOT-10k_Val_000001.txt").write_text("0,0,10,10\n0,0,10,5\n0,0,10,10\n")
    out = tmp_path / "out"
    assert main(["eval", "sot", "--protocol", "got10k", "--gt-root", str(tmp_path / "got"), "--split", "val",
                 "--results", str(res), "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "AO" in printed and "SR0.75" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["ao"] == pytest.approx(75.0) and summary["sr50"] == pytest.approx(50.0)
    assert (out / "per_sequence.csv").read_text().splitlines()[0] == "sequence,ao,sr50,sr75,frames"
    assert main(["eval", "report", "--summaries", str(out), "--out", str(tmp_path / "r.md")]) == 0
    assert "| method | AO | SR0.5 | SR0.75 |" in (tmp_path / "r.md").read_text()
    # a length mismatch is refused, as got10k asserts
    (res / "GOT-10k_Val_000001.txt").write_text("0,0,10,10\n0,0,10,5\n")
    assert main(["eval", "sot", "--protocol", "got10k", "--gt-root", str(tmp_path / "got"), "--split", "val",
                 "--results", str(res), "--out", str(out)]) == 2
    assert "got10k asserts equal shapes" in capsys.readouterr().err
