"""``evaluate_sot``: ground truth + a results folder + a protocol -> scores, per sequence and attribute.

The Python entry point that the CLI, the demo and the benchmark share. Scores are in percent:
``auc`` is the mean of the sequence-averaged success curve over the overlap thresholds,
``precision`` the sequence-averaged precision curve at 20 px, ``norm_precision`` the
normalised-precision curve at 0.20.
"""
from __future__ import annotations

import csv
import json
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from vptracker.eval.sot import Curves, ResultError, get_protocol, sequence_curves_batch
from vptracker.eval.sot_data import SOTGroundTruth, attribute_names, load_ground_truth, load_results


def _from_dataset_sequence(seq) -> SOTGroundTruth:
    """A ``vptracker.datasets`` SOT ``Sequence`` (one track) as evaluation ground truth."""
    track = seq.target
    raw = seq.attributes.get("attributes")
    attributes: dict[str, bool] = {}
    if isinstance(raw, str):  # OTB: names of the attributes present
        attributes = {a.strip(): True for a in raw.split(",") if a.strip()}
    elif raw is not None and np.ndim(raw) == 1:  # TNL2K / TNLLT: one flag per attribute
        attributes = {name: bool(v) for name, v in zip(attribute_names(np.asarray(raw)), raw)}
    return SOTGroundTruth(seq.name, track.boxes, track.visible, attributes, f"{seq.dataset}/{seq.name}")


def _as_ground_truth(gt) -> list[SOTGroundTruth]:
    from vptracker.datasets.base import Sequence

    if isinstance(gt, (str, Path)):
        return load_ground_truth(gt)
    sequences = []
    for s in gt:
        if isinstance(s, Sequence):
            s = _from_dataset_sequence(s)
        if not isinstance(s, SOTGroundTruth):
            raise TypeError("ground truth must be a folder, SOTGroundTruth records or dataset Sequences, "
                            f"got {type(s).__name__}")
        sequences.append(s)
    return sequences


def score_sequences(sequences: list[SOTGroundTruth], predictions: dict[str, np.ndarray],
                    protocol: str) -> dict:
    """Scores in-memory predictions (``{seq: (N, 4) x,y,w,h}``).

    Sequences without a prediction are skipped and listed in ``skipped``; results whose length
    differs from the ground truth are scored as the protocol says (refused, padded with misses
    or cut) and listed in ``length_mismatch``.
    """
    proto = get_protocol(protocol)
    scored = [s for s in sequences if s.name in predictions]
    if not scored:
        raise ResultError("no sequence has a prediction to score")
    overlaps, centers, norms, lengths, mismatch = [], [], [], [], {}
    for seq in scored:
        pred = np.asarray(predictions[seq.name], dtype=np.float64).reshape(-1, 4)
        if len(seq) == 0 or len(pred) == 0:
            raise ResultError(f"{seq.name}: {len(pred)} result rows for {len(seq)} ground-truth frames "
                              "(an empty sequence cannot be scored)")
        if len(pred) != len(seq):
            mismatch[seq.name] = {"result_rows": len(pred), "gt_frames": len(seq)}
        o, c, nc = proto.frame_errors(pred, seq.boxes, seq.visible, seq.name)
        overlaps.append(o)
        centers.append(c)
        norms.append(nc)
        lengths.append(len(o))
    lengths_arr = np.asarray(lengths)
    starts = np.concatenate([[0], np.cumsum(lengths_arr)[:-1]])
    per_seq = sequence_curves_batch(np.concatenate(overlaps), np.concatenate(centers), np.concatenate(norms),
                                    starts, lengths_arr, proto.thresholds)
    summary = _summarise(scored, per_seq, proto, lengths_arr)
    summary["skipped"] = [s.name for s in sequences if s.name not in predictions]
    summary["length_mismatch"] = mismatch
    return summary


def _scores(curves: Curves, proto, rows: np.ndarray | slice = slice(None)) -> dict[str, float]:
    success = curves.success[rows].mean(0)
    precision = curves.precision[rows].mean(0)
    norm_precision = curves.norm_precision[rows].mean(0)
    t = proto.thresholds
    return {"auc": 100.0 * float(success.mean()),
            "precision": 100.0 * float(precision[t.precision_index]),
            "norm_precision": 100.0 * float(norm_precision[t.norm_precision_index])}


def _summarise(scored: list[SOTGroundTruth], per_seq: Curves, proto, lengths: np.ndarray) -> dict:
    t = proto.thresholds
    summary = _scores(per_seq, proto)
    summary.update({
        "protocol": proto.name,
        "num_sequences": len(scored),
        "num_frames": int(lengths.sum()),
        "curves": {"overlap_thresholds": t.overlap.tolist(), "center_thresholds": t.center.tolist(),
                   "norm_center_thresholds": t.norm_center.tolist(),
                   "success": (100 * per_seq.success.mean(0)).tolist(),
                   "precision": (100 * per_seq.precision.mean(0)).tolist(),
                   "norm_precision": (100 * per_seq.norm_precision.mean(0)).tolist()},
        "per_sequence": {s.name: {"auc": 100.0 * float(per_seq.success[i].mean()),
                                  "precision": 100.0 * float(per_seq.precision[i, t.precision_index]),
                                  "norm_precision": 100.0 * float(per_seq.norm_precision[i, t.norm_precision_index]),
                                  "frames": int(lengths[i])}
                         for i, s in enumerate(scored)},
    })
    names = sorted({a for s in scored for a, on in s.attributes.items() if on})
    attributes = {}
    for name in names:
        rows = np.array([i for i, s in enumerate(scored) if s.attributes.get(name)])
        attributes[name] = {**_scores(per_seq, proto, rows), "num_sequences": len(rows)}
    summary["attributes"] = attributes
    return summary


def evaluate_sot(gt: str | Path | Iterable, results_dir: str | Path, protocol: str = "tnl2k",
                 skip_missing: bool = False) -> dict:
    """Scores ``<results_dir>/<seq>.txt`` against ground truth (a folder in any official layout,
    :class:`SOTGroundTruth` records, or single-track ``vptracker.datasets`` Sequences, whose
    ``visible`` flags then play the absent files' role) under ``protocol`` (one of ``PROTOCOLS``).

    Returns ``{"auc", "precision", "norm_precision", "per_sequence", "attributes", "curves", ...}``,
    numbers in percent. A missing result file raises unless ``skip_missing``.
    """
    sequences = _as_ground_truth(gt)
    predictions = load_results(results_dir, [s.name for s in sequences], skip_missing=skip_missing)
    result = score_sequences(sequences, predictions, protocol)
    result["results_dir"] = str(results_dir)
    return result


def write_sot_outputs(summary: dict, out_dir: str | Path) -> Path:
    """``summary.json`` and ``per_sequence.csv`` (and ``attributes.csv`` when there are any)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    with open(out_dir / "per_sequence.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sequence", "auc", "precision", "norm_precision", "frames"])
        for name, s in summary["per_sequence"].items():
            w.writerow([name, f"{s['auc']:.4f}", f"{s['precision']:.4f}", f"{s['norm_precision']:.4f}", s["frames"]])
    if summary.get("attributes"):
        with open(out_dir / "attributes.csv", "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["attribute", "auc", "precision", "norm_precision", "num_sequences"])
            for name, s in summary["attributes"].items():
                w.writerow([name, f"{s['auc']:.4f}", f"{s['precision']:.4f}", f"{s['norm_precision']:.4f}",
                            s["num_sequences"]])
    return out_dir / "summary.json"


def format_sot_table(summaries: dict[str, dict]) -> str:
    """A readable table, one row per tracker."""
    head = f"{'tracker':<24} {'protocol':<8} {'seqs':>5} {'AUC':>7} {'P':>7} {'P_norm':>7}"
    lines = [head, "-" * len(head)]
    for tracker, s in summaries.items():
        lines.append(f"{tracker:<24} {s['protocol']:<8} {s['num_sequences']:>5} {s['auc']:>7.2f} "
                     f"{s['precision']:>7.2f} {s['norm_precision']:>7.2f}")
    return "\n".join(lines)
