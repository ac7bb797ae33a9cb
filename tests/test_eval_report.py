"""BenSMOT combination (tracking + captions) and the markdown report beside published numbers."""
from __future__ import annotations

import json

import numpy as np
import pytest

from vptracker.eval.report import markdown_report
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
    # Table 2: the in-domain summary fills its two columns, the cross-domain ones are missing
    assert "| CRTracker (Chen, Yu, and Tao 2024) | not stated in OmniPT | 54.88 | 35.97 | 12.52 | 2.32 |" in text
    assert "| **CRTracker (rerun)** (ours) | CRTracker (rerun) | 54.88 | 35.97 | missing | missing |" in text
    assert "| OmniPT (Ours) | OmniPT (Ours), Qwen2.5-VL 72B (equals Table 5's 72B row) | 56.4 | 81.7 | 41.0 | 90.2 " \
           "| 55.4 |" in text
    assert "| **omnipt-3b** (ours) | omnipt-3b | 40.00 | 60.00 | 27.00 | 70.00 | 38.00 |" in text
    # every table of the paper is there, with its baselines, even without a summary of ours
    for title in ("Table 1: BenSMOT", "Table 4: Refer-KITTI-V2", "Table 5:", "Table 6:", "Table 7:"):
        assert f"## {title}" in text
    assert "| SORT (Bewley et al. 2016) | SMOTer (Li et al. 2025) | 0.245 |" in text
    assert "| FairMOT (Zhang et al. 2021) | not stated in OmniPT | 22.53 | 15.8 | 32.82 | - | - |" in text
    assert "| **ours** | no summary |" + " missing |" * 11 in text  # Table 1
    # the paper's inconsistencies, marked where a reader compares
    assert "| 76.56 [c] | 65.30 |" in text and "75.56" in text
    assert "| 75.04 [a] |" in text and "| 73.04 [a] | 77.78 |" in text


def test_report_places_tagged_summaries_in_ablation_rows():
    mot = {"task": "mot", "benchmark": "MOT17", "name": "toy-mot", "paper_row": {"table": "table6", "row": "SFT"},
           "COMBINED": {"HOTA": 29.54, "DetA": 1.0, "AssA": 1.0, "MOTA": 1.0, "IDF1": 1.0}}
    rmot = {"task": "rmot", "benchmark": "toy", "name": "toy-rmot", "paper_row": {"table": "table6", "row": "SFT"},
            "COMBINED": {"HOTA": 19.5, "DetA": 1.0, "AssA": 1.0, "MOTA": 1.0, "IDF1": 1.0}}
    smot = {"task": "smot", "benchmark": "BenSMOT", "name": "f8", "paper_row": {"table": "table7", "row": "8"},
            "table_row": {"video METEOR": 0.1, "video CIDEr": 0.2, "instance METEOR": 0.3, "instance CIDEr": 0.4,
                          "HOTA": 50.0, "IDF1": 60.0, "MOTA": 70.0, "video BLEU": 0.5}}
    text = markdown_report([mot, rmot, smot])
    assert "| **ours** (SFT) | toy-mot, toy-rmot | 29.54 | 19.50 | missing |" in text
    assert "| **ours** (8) | f8 | 0.100 | 0.200 | 0.300 | 0.400 | 50.00 | 70.00 |" in text
    assert "| **ours** (MT+SFT) | no summary | missing | missing | missing |" in text
    assert "**f8** (ours)" not in text.split("## Table 1")[1].split("## Table 2")[0]  # a tagged BenSMOT run stays out
    from vptracker.config import ConfigError

    with pytest.raises(ConfigError, match="two summaries"):
        markdown_report([mot, dict(mot, name="again")])
    with pytest.raises(ConfigError, match="fills no column"):
        markdown_report([dict(rmot, paper_row={"table": "table7", "row": "8"})])


def test_report_reads_tags_and_manifests(tmp_path):
    from vptracker.eval.report import load_summaries

    run = tmp_path / "sweep" / "rows" / "f4" / "eval"
    run.mkdir(parents=True)
    (run / "summary.json").write_text(json.dumps({"task": "mot", "benchmark": "MOT17", "name": "f4",
                                                  "COMBINED": {"HOTA": 33.0, "MOTA": 44.0}}))
    (tmp_path / "sweep" / "manifest.json").write_text(json.dumps(
        {"table": "table7", "rows": {"4": {"summaries": ["rows/f4/eval"], "commit": "0123456789abcdef",
                                           "settings": {"frames": 4}}}}))
    (s,) = load_summaries([tmp_path / "sweep"])
    assert s["paper_row"] == {"table": "table7", "row": "4"} and s["_source"].endswith("@ 012345678")
    (t,) = load_summaries([f"Table 7/16={run}"])
    assert t["paper_row"] == {"table": "table7", "row": "16"}
    text = markdown_report([s, t])
    assert "| **ours** (4) |" in text and "| missing | missing | missing | missing | 33.00 | 44.00 |" in text


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
    assert main(["eval", "report", "--summaries", f"table9/x={run}", "--out", str(report)]) == 2
    assert main(["eval", "report", "--out", str(report)]) == 0  # the paper's tables alone
    assert "## Table 7:" in report.read_text()


@pytest.mark.slow
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
