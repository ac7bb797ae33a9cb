"""MOT / RMOT through TrackEval, checked against motmetrics on the real TUD sequences in its wheel."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from vptracker.datasets.base import DatasetFormatError
from vptracker.eval.mot import evaluate_mot
from vptracker.eval.rmot import evaluate_rmot

TUD = ("TUD-Campus", "TUD-Stadtmitte")


@pytest.fixture(scope="module")
def motmetrics():
    mm = pytest.importorskip("motmetrics")
    with pytest.MonkeyPatch.context() as patch:
        # np.asfarray is gone in numpy 2; motmetrics 1.4 still calls it (restored for these tests only)
        patch.setattr(np, "asfarray", lambda a, dtype=np.float64: np.asarray(a, dtype=dtype), raising=False)
        yield mm


@pytest.fixture(scope="module")
def tud(motmetrics, tmp_path_factory):
    """The TUD data in MOTChallenge layout: gt/<seq>/gt/gt.txt (+ seqinfo.ini), results/<seq>.txt."""
    data = Path(motmetrics.__file__).parent / "data"
    root = tmp_path_factory.mktemp("tud")
    for seq in TUD:
        (root / "gt" / seq / "gt").mkdir(parents=True)
        shutil.copy(data / seq / "gt.txt", root / "gt" / seq / "gt" / "gt.txt")
        frames = int(np.loadtxt(data / seq / "gt.txt", delimiter=",")[:, 0].max())
        (root / "gt" / seq / "seqinfo.ini").write_text(f"[Sequence]\nname={seq}\nseqLength={frames}\n")
        (root / "tracker").mkdir(exist_ok=True)
        shutil.copy(data / seq / "test.txt", root / "tracker" / f"{seq}.txt")
    return root


def test_tud_matches_motmetrics(tud, motmetrics):
    ours = evaluate_mot(tud / "gt", tud / "tracker", benchmark="MOT15")
    for seq in TUD:
        gt = motmetrics.io.loadtxt(tud / "gt" / seq / "gt" / "gt.txt", fmt="mot15-2D", min_confidence=1)
        ts = motmetrics.io.loadtxt(tud / "tracker" / f"{seq}.txt", fmt="mot15-2D")
        acc = motmetrics.utils.compare_to_groundtruth(gt, ts, "iou", distth=0.5)
        ref = motmetrics.metrics.create().compute(acc, metrics=["mota", "idf1", "num_switches", "motp"], name=seq)
        row = ours["per_sequence"][seq]
        assert row["MOTA"] == pytest.approx(100 * ref["mota"].iloc[0], abs=1e-6)
        assert row["IDF1"] == pytest.approx(100 * ref["idf1"].iloc[0], abs=1e-6)
        assert row["IDSW"] == int(ref["num_switches"].iloc[0])
        assert row["MOTP"] == pytest.approx(100 * (1 - ref["motp"].iloc[0]), abs=1e-6)  # motmetrics: distance
        assert 0 < row["HOTA"] < 100 and row["HOTA"] == pytest.approx(np.sqrt(row["DetA"] * row["AssA"]), rel=0.05)
    comb = ours["COMBINED"]
    assert comb["IDSW"] == sum(ours["per_sequence"][s]["IDSW"] for s in TUD)


def test_benchmark_preprocessing_follows_trackeval(tud, tmp_path):
    """MOT17 drops distractor-class gt (and tracker boxes on it); MOT15 keeps every row."""
    gt_src = np.loadtxt(tud / "gt" / "TUD-Campus" / "gt" / "gt.txt", delimiter=",")
    gt = gt_src[:, :9].copy()
    gt[:, 6] = 1
    gt[:, 7] = 1
    gt[:, 8] = 1
    distractor = gt[:, 1] == gt[0, 1]
    gt[distractor, 7] = 7  # static_person: a distractor class
    root = tmp_path / "gt" / "TUD-Campus"
    (root / "gt").mkdir(parents=True)
    np.savetxt(root / "gt" / "gt.txt", gt, delimiter=",", fmt="%d")
    (root / "seqinfo.ini").write_text(f"[Sequence]\nseqLength={int(gt[:, 0].max())}\n")
    (tmp_path / "trk").mkdir()
    perfect_without_distractor = gt[~distractor].copy()
    perfect_without_distractor[:, 6] = 1
    np.savetxt(tmp_path / "trk" / "TUD-Campus.txt", perfect_without_distractor[:, :7], delimiter=",", fmt="%d")
    mot17 = evaluate_mot(tmp_path / "gt", tmp_path / "trk", benchmark="MOT17")["COMBINED"]
    mot15 = evaluate_mot(tmp_path / "gt", tmp_path / "trk", benchmark="MOT15")["COMBINED"]
    assert mot17["MOTA"] == pytest.approx(100.0) and mot17["HOTA"] == pytest.approx(100.0)
    assert mot15["MOTA"] < 100.0 and mot15["FN"] == int(distractor.sum())


def test_missing_result_names_the_file(tud, tmp_path):
    (tmp_path / "partial").mkdir()
    shutil.copy(tud / "tracker" / "TUD-Campus.txt", tmp_path / "partial")
    with pytest.raises(DatasetFormatError, match="TUD-Stadtmitte.txt"):
        evaluate_mot(tud / "gt", tmp_path / "partial", benchmark="MOT15")
    r = evaluate_mot(tud / "gt", tmp_path / "partial", benchmark="MOT15", sequences=["TUD-Campus"])
    assert list(r["per_sequence"]) == ["TUD-Campus"]


def test_cli_mot_summary_and_csv(tud, tmp_path):
    from vptracker.cli import main

    out = tmp_path / "out"
    assert main(["eval", "mot", "--benchmark", "MOT15", "--gt-root", str(tud / "gt"), "--results",
                 str(tud / "tracker"), "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["COMBINED"]) >= {"HOTA", "DetA", "AssA", "MOTA", "MOTP", "IDF1", "IDSW"}
    rows = (out / "per_sequence.csv").read_text().splitlines()
    assert rows[0].startswith("sequence,HOTA") and rows[-1].startswith("COMBINED")


def _refer_kitti(root: Path) -> None:
    """Two frames of one video, two expressions, one of them with commas in its name."""
    labels = root / "KITTI" / "labels_with_ids" / "image_02" / "0005"
    labels.mkdir(parents=True)
    (labels / "000000.txt").write_text("0 1 0.1 0.2 0.1 0.2\n0 2 0.5 0.5 0.2 0.3\n")
    (labels / "000001.txt").write_text("0 1 0.12 0.2 0.1 0.2\n0 2 0.52 0.5 0.2 0.3\n")
    expr = root / "expression" / "0005"
    expr.mkdir(parents=True)
    (expr / "black cars, moving left.json").write_text(json.dumps(
        {"label": {"0": [1], "1": [1]}, "ignore": [], "video_name": "0005", "sentence": "black cars, moving left"}))
    (expr / "people.json").write_text(json.dumps({"label": {"0": [2, 1], "1": [2]}, "sentence": "people"}))


def test_rmot_per_expression_ground_truth_and_comma_names(tmp_path):
    _refer_kitti(tmp_path / "rk")
    w, h = 1000, 400
    res = tmp_path / "res" / "0005"
    # predictions equal to the per-expression ground truth, in pixels, frame = index + 1
    (res / "black cars, moving left").mkdir(parents=True)
    (res / "black cars, moving left" / "predict.txt").write_text(
        f"1,7,{0.1 * w},{0.2 * h},{0.1 * w},{0.2 * h},1,1,1\n2,7,{0.12 * w},{0.2 * h},{0.1 * w},{0.2 * h},1,1,1\n")
    (res / "people.txt").write_text(
        f"1,3,{0.5 * w},{0.5 * h},{0.2 * w},{0.3 * h},1,1,1\n2,3,{0.52 * w},{0.5 * h},{0.2 * w},{0.3 * h},1,1,1\n")
    r = evaluate_rmot(tmp_path / "rk", tmp_path / "res", ("0005",), image_sizes={"0005": (w, h)})
    assert set(r["per_sequence"]) == {"0005/black cars, moving left", "0005/people"}
    assert r["per_sequence"]["0005/black cars, moving left"]["HOTA"] == pytest.approx(100.0)
    people = r["per_sequence"]["0005/people"]
    assert people["FN"] == 1 and people["MOTA"] == pytest.approx(100 * 2 / 3)  # id 1 in frame 1 not predicted
    assert r["num_expressions"] == 2 and r["COMBINED"]["MOTA"] == pytest.approx(100 * 4 / 5)


def test_cli_rmot_reads_image_size_from_frames(tmp_path):
    from PIL import Image

    from vptracker.cli import main

    _refer_kitti(tmp_path / "rk")
    frames = tmp_path / "rk" / "KITTI" / "training" / "image_02" / "0005"
    frames.mkdir(parents=True)
    for i in range(2):
        Image.new("RGB", (200, 100)).save(frames / f"{i:06d}.png")
    res = tmp_path / "res" / "0005"
    res.mkdir(parents=True)
    (res / "black cars, moving left.txt").write_text("1,1,20,20,20,20,1\n2,1,24,20,20,20,1\n")
    (res / "people.txt").write_text("")
    out = tmp_path / "out"
    assert main(["eval", "rmot", "--data-root", str(tmp_path / "rk"), "--results", str(tmp_path / "res"),
                 "--videos", "0005", "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["per_sequence"]["0005/black cars, moving left"]["HOTA"] == pytest.approx(100.0)
    assert summary["per_sequence"]["0005/people"]["HOTA"] == 0.0
    assert '"0005/black cars, moving left"' in (out / "per_expression.csv").read_text()


def test_cli_mot_trackeval_errors_are_one_line(tud, tmp_path):
    from vptracker.cli import main

    (tmp_path / "bad").mkdir()
    for seq in TUD:  # a result beyond the sequence's last frame: TrackEval refuses it
        (tmp_path / "bad" / f"{seq}.txt").write_text("999,1,1,1,5,5,1,-1,-1,-1\n")
    assert main(["eval", "mot", "--benchmark", "MOT15", "--gt-root", str(tud / "gt"), "--results",
                 str(tmp_path / "bad"), "--out", str(tmp_path / "out")]) == 2
