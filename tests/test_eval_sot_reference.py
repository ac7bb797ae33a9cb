"""`ostrack` and `lasot` against numbers produced by the reference scripts themselves.

The expected values below were printed by the upstream code run unchanged on these exact inputs
(not part of this project; rerun with the scripts named here to check them):

* ``lasot``: visionml/pytracking master 7eb9e74, ``pytracking/analysis/extract_results.py``
  (``calc_seq_err_robust`` with dataset ``lasot`` and the visibility flags, curves and AUC as
  ``extract_results`` + ``plot_results.get_auc_curve``).
* ``ostrack``: jcwang0602/VPTracker 4e5555c, ``evaluation/extract_results.py`` (negative values
  set to 0, dataset ``tnl2k``, no visibility flags) + ``evaluation/eval.py``.

The scripts keep per-sequence curves in float32, so they agree with ours to about 1e-5 (percent).
"""
from __future__ import annotations

import json
import math
import tarfile

import numpy as np
import pytest
from test_eval_sot import perturbed

from vptracker.datasets.base import single_target
from vptracker.eval.sot import PYTRACKING_THRESHOLDS
from vptracker.eval.sot_eval import score_sequences, sot_ground_truth

FLOAT32 = 1e-4  # percent


def edge_cases(allow_negative_size: bool):
    """Constructed sequences: gt at and beyond the border, fractional, zero-size and invisible
    frames; results with negative x/y, zero sizes, IoU and centre-error ties, short and long files."""
    rng = np.random.default_rng(11)
    seqs, preds = [], {}
    for k in range(6):
        n = 40 + 7 * k
        gt = np.column_stack([rng.integers(-3, 60, n), rng.integers(-3, 40, n), rng.integers(0, 30, n),
                              rng.integers(1, 30, n)]).astype(float)
        gt[::9, :2] = 0.0                      # touching x=0 / y=0
        gt[3::11] += 0.5                       # fractional
        gt[5::13, 2] = 0.0                     # zero width
        gt[0] = [10, 10, 20, 20]
        visible = rng.random(n) > 0.15
        visible[0] = True
        pred = gt + rng.normal(0, 3, gt.shape).round(1)
        pred[2::7, :2] = -rng.integers(1, 9, (len(pred[2::7]), 2))     # negative x, y
        pred[4::10, 3] = 0.0                                           # zero height: carried forward
        if allow_negative_size:
            pred[6::12, 2] = -4.0                                      # negative width
        else:
            pred[:, 2:] = np.abs(pred[:, 2:])
        # ties: IoU exactly 0.5, 0.75, 0.65 against a 20x20 box, centre error exactly 20
        for i, box in zip(range(10, 14), ([10, 10, 10, 20], [10, 10, 15, 20], [10, 10, 13, 20], [22, 26, 20, 20])):
            gt[i] = [10, 10, 20, 20]
            visible[i] = True
            pred[i] = box
        if k == 4:
            pred = pred[: n - 9]               # short result
        if k == 5:
            pred = np.concatenate([pred, pred[[1, 7, 8]]])  # long result
        seqs.append(single_target(f"edge{k}", gt, visible))
        preds[f"edge{k}"] = pred
    return seqs, preds


def _check(ours: dict, expected: tuple[float, float, float]):
    got = (ours["auc"], ours["precision"], ours["norm_precision"])
    assert got == pytest.approx(expected, abs=FLOAT32)


def test_thresholds_are_torch_arange():
    torch = pytest.importorskip("torch")
    ref = torch.arange(0.0, 1.0 + 0.05, 0.05, dtype=torch.float64).tolist()
    assert PYTRACKING_THRESHOLDS.overlap.tolist() == ref
    assert [math.nextafter(k * 0.05, 2) for k in (13, 15)] == [ref[13], ref[15]]


def test_constructed_edge_cases_equal_the_scripts():
    seqs, preds = edge_cases(allow_negative_size=True)
    _check(score_sequences(seqs, preds, "ostrack"), (26.802212, 70.050697, 31.312578))
    seqs, preds = edge_cases(allow_negative_size=False)
    kept = seqs[:4] + seqs[5:]  # pytracking's LaSOT mode refuses the short result
    _check(score_sequences(kept, preds, "lasot"), (18.970331, 52.227394, 40.532501))


def test_published_otb_trackers_equal_the_scripts(shared_data):
    gt = [single_target(s.name, s.target.boxes, np.ones(len(s), bool)) for s in sot_ground_truth(shared_data / "otb")]
    expected = {"MEEM": (65.37716, 100.0, 72.48606), "MUSTer": (63.71933, 92.9601, 71.92406),
                "STRUCK": (62.02161, 91.19048, 70.33998)}
    for tracker, numbers in expected.items():
        preds = {s.name: np.array(json.loads((shared_data / "otb" / "results" / tracker / f"{s.name}.json")
                                             .read_text())[0]["res"], dtype=float) for s in gt}
        for protocol in ("ostrack", "lasot"):
            _check(score_sequences(gt, preds, protocol), numbers)


@pytest.fixture(scope="module")
def tnl2k_gt(shared_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("tnl2k_ref")
    with tarfile.open(shared_data / "tnl2k" / "test_annos.tar.gz") as tar:
        tar.extractall(out, filter="data")
    return sot_ground_truth(out / "annos")


def test_full_tnl2k_test_set_equals_the_scripts(tnl2k_gt):
    itself = {s.name: s.target.boxes for s in tnl2k_gt}
    _check(score_sequences(tnl2k_gt, itself, "lasot"), (84.664185, 88.897392, 91.716949))
    _check(score_sequences(tnl2k_gt, itself, "ostrack"), (87.326744, 91.64962, 99.960587))
    tracker = {s.name: perturbed(s.target.boxes, i) for i, s in enumerate(tnl2k_gt)}
    _check(score_sequences(tnl2k_gt, tracker, "lasot"), (49.532715, 34.718178, 45.816444))
    _check(score_sequences(tnl2k_gt, tracker, "ostrack"), (51.491978, 35.360661, 53.599827))
