"""Hostile and harmless result / ground-truth files through `vptracker eval` (issue #18).

Malformed files are one error naming the file and line (exit 2 in the CLI, no traceback);
harmless variants (CRLF, BOM, spaces in paths) score exactly like clean data; short result files
are refused or count their missing frames as misses, as each protocol's reference does.
"""
from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from vptracker.cli import main
from vptracker.datasets.base import DatasetFormatError, single_target
from vptracker.eval.sot import ResultError
from vptracker.eval.sot_eval import evaluate_sot, score_sequences, sot_ground_truth

SOT_PROTOCOLS = ("tnl2k", "ostrack", "lasot", "otb")

# ----------------------------------------------------------------------------- SOT


@pytest.fixture()
def otb(shared_data, tmp_path):
    """Real OTB ground truth under a path with spaces, and MEEM's published results as text."""
    gt = tmp_path / "otb gt"
    for seq in ("Couple", "Crossing", "Football1"):
        (gt / seq).mkdir(parents=True)
        shutil.copy(shared_data / "otb" / seq / "groundtruth_rect.txt", gt / seq / "groundtruth_rect.txt")
    res = tmp_path / "my results"
    res.mkdir()
    boxes = {}
    for seq in ("Couple", "Crossing", "Football1"):
        boxes[seq] = json.loads((shared_data / "otb" / "results" / "MEEM" / f"{seq}.json").read_text())[0]["res"]
        (res / f"{seq}.txt").write_text("\n".join(",".join(f"{v:g}" for v in b) for b in boxes[seq]) + "\n")
    return gt, res, boxes


def _write(res: Path, seq: str, text: str | bytes) -> None:
    path = res / f"{seq}.txt"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())


@pytest.mark.parametrize("protocol", SOT_PROTOCOLS)
def test_sot_harmless_variants_score_like_clean_data(otb, protocol):
    gt, res, _ = otb
    clean = evaluate_sot(gt, res, protocol)
    text = (res / "Couple.txt").read_text()
    variants = {"crlf": text.replace("\n", "\r\n").encode(), "bom": b"\xef\xbb\xbf" + text.encode(),
                "tabs and blank end": (text.replace(",", "\t") + "\n\n").encode(),
                "bom crlf spaces": b"\xef\xbb\xbf" + text.replace(",", ", ").replace("\n", "\r\n").encode()}
    for name, blob in variants.items():
        _write(res, "Couple", blob)
        again = evaluate_sot(gt, res, protocol)
        assert again["auc"] == clean["auc"] and again["precision"] == clean["precision"], name
        assert again["per_sequence"] == clean["per_sequence"], name


def test_sot_short_results_are_misses_or_refused(otb):
    gt, res, boxes = otb
    full = {p: evaluate_sot(gt, res, p) for p in SOT_PROTOCOLS}
    n = len(boxes["Couple"])
    for keep in (n // 2, 1):
        _write(res, "Couple", "\n".join(",".join(f"{v:g}" for v in b) for b in boxes["Couple"][:keep]))
        # pytracking (not LaSOT mode) pads with zero boxes: every missing frame is a miss
        short = evaluate_sot(gt, res, "ostrack")
        assert short["length_mismatch"] == {"Couple": {"result_rows": keep, "gt_frames": n}}
        # ... so the sequence scores its first `keep` frames' successes over all n frames
        first = [single_target("Couple", s.target.boxes[:keep]) for s in sot_ground_truth(gt) if s.name == "Couple"]
        head = score_sequences(first, {"Couple": np.array(boxes["Couple"][:keep], float)}, "ostrack")
        expected = head["per_sequence"]["Couple"]["auc"] * keep / n
        assert short["per_sequence"]["Couple"]["auc"] == pytest.approx(expected, abs=1e-9)
        assert short["auc"] < full["ostrack"]["auc"]
        # the TNL2K toolkit, pytracking's LaSOT mode and got10k cannot score it: refused, named
        for protocol in ("tnl2k", "lasot", "otb"):
            with pytest.raises(ResultError, match="Couple"):
                evaluate_sot(gt, res, protocol)


@pytest.mark.parametrize(("content", "line", "expected"), [
    ("1,2,3,4\n5,6,7,8,9,10,11,12\n", 2, "4 numbers per line .* found 8 .*polygon"),
    ("1,2,3,4\n1,2,nan,4\n", 2, "finite numbers, found nan"),
    ("1,2,3,4\n1,2,3,4\n1,inf,3,4\n", 3, "finite numbers, found inf"),
    ("1,2,3,4\n1,2,3\n", 2, "4 numbers per line .*found 3"),
    ("1,2,3,4\n1,2,three,4\n", 2, "4 numbers per line"),
])
@pytest.mark.parametrize("protocol", SOT_PROTOCOLS)
def test_sot_malformed_lines_name_file_and_line(otb, content, line, expected, protocol):
    gt, res, _ = otb
    _write(res, "Crossing", content)
    with pytest.raises(DatasetFormatError, match=rf"my results/Crossing.txt:{line}: expected {expected}"):
        evaluate_sot(gt, res, protocol)


def test_sot_empty_files_and_cli_exit_codes(otb, tmp_path, capsys):
    gt, res, _ = otb
    _write(res, "Football1", "")
    with pytest.raises(DatasetFormatError, match="Football1.txt: expected one x,y,w,h line per frame"):
        evaluate_sot(gt, res, "ostrack")
    assert main(["eval", "sot", "--protocol", "ostrack", "--gt-root", str(gt), "--results", str(res),
                 "--out", str(tmp_path / "o"), "--no-plots"]) == 2
    err = capsys.readouterr().err
    assert "Football1.txt" in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    (gt / "Football1" / "groundtruth_rect.txt").write_text("\n")
    with pytest.raises(DatasetFormatError, match="groundtruth_rect.txt: expected at least one x,y,w,h line"):
        evaluate_sot(gt, res, "ostrack")


def test_cli_internal_error_exits_1(otb, tmp_path, monkeypatch, capsys):
    from vptracker.eval import sot_eval

    gt, res, _ = otb

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(sot_eval, "evaluate_sot", broken)
    assert main(["eval", "sot", "--protocol", "otb", "--gt-root", str(gt), "--results", str(res),
                 "--out", str(tmp_path / "o"), "--no-plots"]) == 1
    assert "internal error (RuntimeError: a bug)" in capsys.readouterr().err


def test_rmot_takes_the_readme_gt_root_flag():
    from vptracker.cli import build_parser

    args = build_parser().parse_args(["eval", "rmot", "--gt-root", "data/Refer-KITTI-V2", "--results", "r",
                                      "--out", "o"])
    assert args.data_root == "data/Refer-KITTI-V2"
    old = build_parser().parse_args(["eval", "rmot", "--data-root", "d", "--results", "r", "--out", "o"])
    assert old.data_root == "d"


# ----------------------------------------------------------------------------- MOT


@pytest.fixture()
def tud(tmp_path):
    """The real TUD-Campus sequence shipped in the motmetrics wheel, MOTChallenge layout."""
    mm = pytest.importorskip("motmetrics")
    data = Path(mm.__file__).parent / "data" / "TUD-Campus"
    root = tmp_path / "mot data"
    (root / "gt" / "TUD-Campus" / "gt").mkdir(parents=True)
    shutil.copy(data / "gt.txt", root / "gt" / "TUD-Campus" / "gt" / "gt.txt")
    (root / "gt" / "TUD-Campus" / "seqinfo.ini").write_text("[Sequence]\nname=TUD-Campus\nseqLength=71\n")
    (root / "trk").mkdir()
    shutil.copy(data / "test.txt", root / "trk" / "TUD-Campus.txt")
    return root


def _mot(root):
    from vptracker.eval.mot import evaluate_mot

    return evaluate_mot(root / "gt", root / "trk", benchmark="MOT15")["COMBINED"]


def test_mot_bom_and_crlf_score_like_clean_data(tud):
    clean = _mot(tud)
    gt_file, ini = tud / "gt" / "TUD-Campus" / "gt" / "gt.txt", tud / "gt" / "TUD-Campus" / "seqinfo.ini"
    res_file = tud / "trk" / "TUD-Campus.txt"
    for path in (gt_file, ini, res_file):
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    assert _mot(tud) == clean
    ini.unlink()  # without seqinfo.ini the length comes from the (BOM) gt file
    assert _mot(tud)["HOTA"] == clean["HOTA"]


@pytest.mark.parametrize(("which", "column", "token", "expected"), [
    ("trk", 2, "nan", "finite numbers, found nan"),
    ("gt", 4, "nan", "finite numbers, found nan"),
    ("gt", 4, "-inf", "finite numbers, found -inf"),
    ("trk", 0, "2.5", "an integer frame number"),
    ("trk", 4, "-3", "a width and height >= 0"),
])
def test_mot_bad_numbers_name_file_and_line(tud, which, column, token, expected):
    path = tud / "gt" / "TUD-Campus" / "gt" / "gt.txt" if which == "gt" else tud / "trk" / "TUD-Campus.txt"
    lines = path.read_text().splitlines()
    cells = lines[4].split(",")
    cells[column] = token
    lines[4] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DatasetFormatError, match=rf"{path.name}:5: expected {expected}"):
        _mot(tud)


def test_mot_cli_bad_input_exits_2_one_line(tud, tmp_path, capsys):
    path = tud / "trk" / "TUD-Campus.txt"
    path.write_text(path.read_text().replace(",", ",nan,", 1))
    rc = main(["eval", "mot", "--benchmark", "MOT15", "--gt-root", str(tud / "gt"), "--results", str(tud / "trk"),
               "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert rc == 2 and "TUD-Campus.txt:1" in err and "Traceback" not in err


# ----------------------------------------------------------------------------- CRMOT


@pytest.fixture()
def crmot(shared_data, tmp_path):
    """Two real (scene, description) pairs with CRTracker's published outputs."""
    src = shared_data / "crmot_in_domain"
    pairs = sorted(p.name for p in (src / "gt").iterdir())[:2]
    for sub in ("gt", "CRTracker"):
        for pair in pairs:
            shutil.copytree(src / sub / pair, tmp_path / sub / pair)
    return tmp_path, pairs


def test_crmot_missing_view_is_an_error_unless_allowed(crmot, capsys):
    from vptracker.eval.crmot import evaluate_crmot

    root, pairs = crmot
    clean = evaluate_crmot(root / "gt", root / "CRTracker")
    assert clean["missing"] == []
    view = root / "CRTracker" / pairs[0] / "View2.txt"
    view.unlink()
    with pytest.raises(DatasetFormatError, match="View2.txt: expected a prediction file for every ground-truth view"):
        evaluate_crmot(root / "gt", root / "CRTracker")
    allowed = evaluate_crmot(root / "gt", root / "CRTracker", allow_missing=True)
    assert allowed["missing"] == [f"{pairs[0]}/View2.txt"]
    view.write_text("")  # an empty file is a view without predictions: scores like the allowed gap
    assert evaluate_crmot(root / "gt", root / "CRTracker")["per_pair"] == allowed["per_pair"]
    view.unlink()
    rc = main(["eval", "crmot", "--gt-root", str(root / "gt"), "--results", str(root / "CRTracker"),
               "--out", str(root / "out"), "--allow-missing"])
    err = capsys.readouterr().err
    assert rc == 0 and "1 missing prediction folders/views scored as empty" in err


def test_crmot_nan_frame_is_an_error_and_huge_frames_are_cheap(crmot):
    from vptracker.eval.crmot import evaluate_crmot

    root, pairs = crmot
    view = next(p for p in sorted((root / "CRTracker" / pairs[0]).glob("View*.txt")) if p.stat().st_size)
    original = view.read_text()
    lines = original.splitlines()
    view.write_text("\n".join([lines[0], "nan," + lines[1].split(",", 1)[1], *lines[2:]]) + "\n")
    with pytest.raises(DatasetFormatError, match=rf"{view.name}:2: expected finite numbers, found nan"):
        evaluate_crmot(root / "gt", root / "CRTracker")
    view.write_text(original + "1000000," + lines[0].split(",", 1)[1] + "\n")
    start = time.perf_counter()
    r = evaluate_crmot(root / "gt", root / "CRTracker")
    assert time.perf_counter() - start < 10.0 and np.isfinite(r["cvridf1"])


def test_collapsed_empty_timesteps_score_like_every_timestep(crmot):
    """to_data_dict visits only timesteps with rows; expanding it back to one entry per frame
    gives the same CVRIDF1 / CVRMA on real data."""
    from trackeval.metrics import Identity

    from vptracker.eval.crmot import DevkitCLEAR, concatenated, interleaved, load_pair, to_data_dict

    root, pairs = crmot
    views = load_pair(root / "gt" / pairs[0], root / "CRTracker" / pairs[0])

    def expanded(gt, pred):
        data = to_data_dict(gt, pred)
        frames = np.union1d(gt[:, 0], pred[:, 0]).astype(int)
        full = {key: [] for key in ("gt_ids", "tracker_ids", "similarity_scores")}
        by_frame = {}
        k = 0
        previous = -1
        for t in frames:
            if t > previous + 1:
                k += 1  # the one collapsed empty step
            by_frame[t] = k
            k += 1
            previous = t
        for t in range(data["num_timesteps"]):
            for key, steps in full.items():
                steps.append(data[key][by_frame[t]] if t in by_frame else
                             (np.empty((0, 0)) if key == "similarity_scores" else np.empty(0, dtype=int)))
        return {**data, **full}

    ident = Identity({"PRINT_CONFIG": False, "THRESHOLD": 0.5})
    clear = DevkitCLEAR({"PRINT_CONFIG": False, "THRESHOLD": 0.5})
    for build, metric, field in ((concatenated, ident, "IDF1"), (interleaved, clear, "MOTA")):
        gt, pred = build(views)
        assert metric.eval_sequence(to_data_dict(gt, pred))[field] == metric.eval_sequence(expanded(gt, pred))[field]


def test_sot_bad_ground_truth_and_flags_name_file_and_line(tmp_path):
    """TNL2K toolkit layout: NaN in gt, a flag that is not 0/1, a Latin-1 result file."""
    from vptracker.eval.sot_eval import sot_ground_truth

    root = tmp_path / "annos"
    for sub in ("gt_rect", "absent"):
        (root / sub).mkdir(parents=True)
    (root / "gt_rect" / "seq.txt").write_text("10,10,20,20\n11,10,20,20\n12,10,20,20\n")
    (root / "absent" / "seq.txt").write_text("0\n0\n0\n")
    res = tmp_path / "res"
    res.mkdir()
    (res / "seq.txt").write_text("10,10,20,20\n11,10,20,20\n12,10,20,20\n")
    assert evaluate_sot(root, res, "tnl2k")["num_frames"] == 3
    (root / "absent" / "seq.txt").write_text("0\n2\n0\n")
    with pytest.raises(DatasetFormatError, match=r"absent/seq.txt:2: expected absent flags 0 or 1, got '2'"):
        sot_ground_truth(root)
    (root / "absent" / "seq.txt").write_text("0\ninf\n0\n")
    with pytest.raises(DatasetFormatError, match=r"absent/seq.txt:2: expected absent flags 0 or 1, got 'inf'"):
        sot_ground_truth(root)
    (root / "absent" / "seq.txt").write_text("0\n0\n0\n")
    (root / "gt_rect" / "seq.txt").write_text("10,10,20,20\n11,10,NaN,20\n12,10,20,20\n")
    with pytest.raises(DatasetFormatError, match=r"gt_rect/seq.txt:2: expected 4 numbers, all finite, got '11,10,NaN,20'"):
        sot_ground_truth(root)
    (root / "gt_rect" / "seq.txt").write_text("10,10,20,20\n11,10,20,20\n12,10,20,20\n")
    (res / "seq.txt").write_bytes("10,10,20,20\n11,10,20,20 caf\u00e9\n".encode("latin-1"))
    with pytest.raises(DatasetFormatError, match=r"res/seq.txt: expected UTF-8 text"):
        evaluate_sot(root, res, "tnl2k")
