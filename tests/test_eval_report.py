"""BenSMOT combination (tracking + captions) and the markdown report beside published numbers."""
from __future__ import annotations

import json

import numpy as np
import pytest

from vptracker.eval.report import PUBLISHED, markdown_report
from vptracker.eval.smot import evaluate_smot, smot_table_row, track_assignment


class _NoSynonyms:
    def synsets(self, *args, **kwargs):
        return []


@pytest.fixture
def bensmot(tmp_path, shared_data):
    """A BenSMOT-layout sequence built from real CRTrack boxes (two people over real frames)."""
    src = [p for p in sorted((shared_data / "crmot_in_domain" / "gt").iterdir())
           if (p / "gt" / "View1.txt").stat().st_size > 0]
    first_ids = {}
    for p in src:  # two different people (a person may be the answer to several descriptions)
        first_ids.setdefault(np.loadtxt(p / "gt" / "View1.txt", delimiter=",", ndmin=2)[0, 1], p)
    src = list(first_ids.values())
    rows = []
    for gid, pair in enumerate(src[:2], start=1):
        table = np.loadtxt(pair / "gt" / "View1.txt", delimiter=",", ndmin=2)[:30]
        table[:, 1] = gid
        rows.append(table)
    gt = np.concatenate(rows)
    seq = tmp_path / "gt" / "walking" / "seq01"
    (seq / "gt").mkdir(parents=True)
    np.savetxt(seq / "gt" / "gt.txt", gt, delimiter=",", fmt="%d")
    (seq / "video_caption.txt").write_text("Two men walk across a square.\n")
    (seq / "instance_captions.txt").write_text(
        f"man0: {src[0].name.split('_', 1)[1]}\nman1: {src[1].name.split('_', 1)[1]}\n")
    res = tmp_path / "res"
    res.mkdir()
    pred = gt.copy()
    pred[:, 1] = np.where(gt[:, 1] == 1, 42, 7)  # the tracker's own ids
    np.savetxt(res / "seq01.txt", pred[:, :7], delimiter=",", fmt="%d")
    (res / "video_captions.json").write_text(json.dumps({"seq01": "Two men walk across a square."}))
    (res / "instance_captions.json").write_text(json.dumps({"seq01/42": src[0].name.split("_", 1)[1],
                                                            "seq01/7": "A person"}))
    return tmp_path


def test_track_assignment_maps_predicted_ids_to_gt():
    box = [10, 10, 20, 20]
    gt = np.array([[1, 1, *box], [1, 2, 100, 100, 20, 20], [2, 1, *box]], float)
    pred = np.array([[1, 9, 100, 100, 20, 20], [1, 3, *box], [2, 3, *box]], float)
    assert track_assignment(gt, pred) == {3: 1, 9: 2}


def _instance_refs(root):
    return [[line.split(": ", 1)[1]] for line in
            (root / "gt" / "walking" / "seq01" / "instance_captions.txt").read_text().splitlines()]


def test_smot_combines_tracking_and_captions(bensmot):
    r = evaluate_smot(bensmot / "gt", bensmot / "res", caption_protocol="smoter", wordnet=_NoSynonyms())
    assert r["tracking"]["COMBINED"]["HOTA"] == pytest.approx(100.0)
    assert r["video_caption"]["BLEU-4"] == pytest.approx(1.0)
    # track 42 follows gt 1 and carries its exact caption; track 7 (gt 2) says little. SMOTer's
    # BLEU is nltk's corpus_bleu on the raw strings (character n-grams), references in gt order.
    from nltk.translate.bleu_score import corpus_bleu

    refs = [v[0] for v in _instance_refs(bensmot)]
    hyps = [refs[0], "A person"]
    expected = corpus_bleu([[t] for t in refs], hyps, weights=(1.0,))
    assert r["instance_caption"]["BLEU-1"] == pytest.approx(expected) and 0.2 < expected < 1.0
    row = smot_table_row(r)
    assert list(row)[-3:] == ["HOTA", "IDF1", "MOTA"] and row["video BLEU"] == pytest.approx(1.0)


def test_report_places_ours_beside_published(tmp_path):
    summaries = [
        {"task": "sot", "benchmark": "TNL2K", "name": "vptracker-4b", "protocol": "ostrack",
         "auc": 61.234, "precision": 65.1, "norm_precision": 70.0},
        {"task": "crmot", "benchmark": "CRTrack-In-domain", "name": "CRTracker (rerun)",
         "cvridf1": 54.8788, "cvrma": 35.9719},
        {"task": "mot", "benchmark": "DanceTrack", "name": "omnipt-3b",
         "COMBINED": {"HOTA": 40.0, "DetA": 60.0, "AssA": 27.0, "MOTA": 70.0, "IDF1": 38.0, "IDSW": 12}},
    ]
    text = markdown_report(summaries)
    assert "## TNL2K (protocol: ostrack)" in text
    assert "| JointNLT (published) | 56.90 | 58.10 | - |" in text
    assert "| **vptracker-4b** (ours) | 61.23 | 65.10 | 70.00 |" in text
    assert "| CRTracker (published) | 54.88 | 35.97 |" in text and "| **CRTracker (rerun)** (ours) | 54.88 | 35.97 |" in text
    assert "| OmniPT (72B) (published) | 56.40 | 81.70 | 41.00 | 90.20 | 55.40 |" in text
    assert set(PUBLISHED) >= {"TNL2K", "DanceTrack", "Refer-KITTI-V2", "CRTrack-In-domain", "BenSMOT"}


def test_cli_report_from_summary_folders(tmp_path, shared_data):
    from vptracker.cli import main

    run = tmp_path / "run"
    res = tmp_path / "res"
    res.mkdir()
    for seq in ("Couple", "Crossing", "Football1"):
        boxes = json.loads((shared_data / "otb" / "results" / "MEEM" / f"{seq}.json").read_text())[0]["res"]
        (res / f"{seq}.txt").write_text("\n".join("\t".join(map(str, b)) for b in boxes))
    assert main(["eval", "sot", "--protocol", "otb", "--gt-root", str(shared_data / "otb"), "--results",
                 f"MEEM={res}", "--out", str(run), "--no-plots", "--benchmark-name", "OTB-3"]) == 0
    assert not (run / "success_plot.png").exists()
    report = tmp_path / "report.md"
    assert main(["eval", "report", "--summaries", str(run), "--out", str(report)]) == 0
    text = report.read_text()
    assert "## OTB-3 (protocol: otb)" in text and "**MEEM** (ours)" in text
    assert main(["eval", "report", "--summaries", str(tmp_path / "missing"), "--out", str(report)]) == 2


def test_cli_smot_smoter_needs_wordnet_or_scores(bensmot, capsys):
    import nltk

    from vptracker.cli import main

    try:
        nltk.data.find("corpora/wordnet")
        has_wordnet = True
    except LookupError:
        has_wordnet = False
    rc = main(["eval", "smot", "--gt-root", str(bensmot / "gt"), "--results", str(bensmot / "res"),
               "--out", str(bensmot / "out"), "--caption-protocol", "smoter"])
    if has_wordnet:
        assert rc == 0 and json.loads((bensmot / "out" / "summary.json").read_text())["table_row"]["HOTA"] == 100.0
    else:
        assert rc == 2 and "wordnet" in capsys.readouterr().err.lower()
