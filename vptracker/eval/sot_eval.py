"""``evaluate_sot``: ground truth + a results folder + a protocol -> scores, per sequence and attribute.

The Python entry point that the CLI, the demo and the benchmark share. Scores are in percent:
``auc`` is the mean of the sequence-averaged success curve over the overlap thresholds,
``precision`` the sequence-averaged precision curve at 20 px, ``norm_precision`` the
normalised-precision curve at 0.20.
"""
from __future__ import annotations

import csv
import json
import warnings
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from vptracker.datasets import load
from vptracker.datasets.base import DatasetFormatError, Sequence
from vptracker.datasets.frames import split_dir
from vptracker.datasets.numparse import boxes_many
from vptracker.datasets.paths import subfolders
from vptracker.eval.sot import ResultError, get_protocol, protocol_class

# Layouts ``--gt-root`` may hold, tried in order: (reader, what marks it).
_LAYOUTS = (("tnl2k_toolkit", "gt_rect/"), ("otb", "*/groundtruth_rect*.txt"), ("got10k", "*/cover.label"),
            ("lasot", "*/*/groundtruth.txt"), ("tnllt", "*/absent_label.txt"), ("tnl2k", "*/groundtruth.txt"))
SOT_READERS = tuple(name for name, _ in _LAYOUTS)


def _holds(root: Path, mark: str) -> bool:
    """Whether ``root`` holds ``mark`` (``dir/``, or ``*/.../pattern``), never entering a link back
    to a folder above (a loop would make ``*/*/groundtruth.txt`` find a LaSOT layout in TNL2K)."""
    if mark.endswith("/"):
        return (root / mark).is_dir()
    *levels, pattern = mark.split("/")
    folders: Iterable[Path] = [root]
    with warnings.catch_warnings():     # the reader names the loops it meets; detection stays quiet
        warnings.simplefilter("ignore")
        for _ in levels:
            folders = (sub for folder in folders for sub in subfolders(folder))
        return any(next(folder.glob(pattern), None) is not None for folder in folders)


def detect_sot_dataset(root: Path) -> str:
    """The reader of a ground-truth folder, from what it holds (see ``_LAYOUTS``)."""
    for name, mark in _LAYOUTS:
        if _holds(root, mark):
            return name
    raise DatasetFormatError(root, None, "gt_rect/<seq>.txt (TNL2K toolkit), <seq>/groundtruth.txt "
                             "(TNL2K, TNLLT, GOT-10k, LaSOT <cls>/<cls>-N/) or <Seq>/groundtruth_rect.txt (OTB)")


def sot_ground_truth(root: str | Path, dataset: str | None = None, split: str | None = None) -> list[Sequence]:
    """The sequences of ``root`` read annotation-first by the dataset reader training uses
    (``dataset`` names it; by default it is told from the layout). No image is opened."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetFormatError(root, None, "a ground-truth folder")
    if dataset is None:   # a split is a sub-folder or, for TNLLT and LaSOT, a list file in the root
        try:
            folder = split_dir(root, split)
        except DatasetFormatError:
            folder = root
        dataset = detect_sot_dataset(folder)
    sequences = load(dataset, root, split, annotation_only=True)
    names = [s.name for s in sequences]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise DatasetFormatError(root, None, f"unique sequence names, found duplicates {dup[:5]}")
    return sequences


def load_results(results_dir: str | Path, names: list[str], skip_missing: bool = False) -> dict[str, np.ndarray]:
    """``<results_dir>/<seq>.txt`` boxes (x,y,w,h per frame) for each name; missing files raise."""
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise DatasetFormatError(results_dir, None, "a results folder holding <seq>.txt files")
    paths = {name: results_dir / f"{name}.txt" for name in names}
    missing = [name for name, path in paths.items() if not path.is_file()]
    if missing and not skip_missing:
        raise DatasetFormatError(paths[missing[0]], None,
                                 f"a result file for every sequence ({len(missing)} missing, e.g. {missing[:3]})")
    present = [name for name in names if name not in set(missing)]
    results = dict(zip(present, boxes_many([paths[n] for n in present], what="result file")))
    for name, boxes in results.items():
        if len(boxes) == 0:
            raise DatasetFormatError(paths[name], None, "one x,y,w,h line per frame (the file is empty)")
    return results


def _as_ground_truth(gt) -> list[Sequence]:
    if isinstance(gt, (str, Path)):
        return sot_ground_truth(gt)
    sequences = list(gt)
    for s in sequences:
        if not isinstance(s, Sequence):
            raise TypeError(f"ground truth must be a folder or dataset Sequences, got {type(s).__name__}")
    return sequences


def score_sequences(sequences: list[Sequence], predictions: dict[str, np.ndarray], protocol: str) -> dict:
    """Scores in-memory predictions (``{seq: (N, 4) x,y,w,h}``) of single-track Sequences.

    Sequences without a prediction are skipped and listed in ``skipped``; results whose length
    differs from the ground truth are scored as the protocol says (refused, padded with misses
    or cut) and listed in ``length_mismatch``.
    """
    proto = get_protocol(protocol)
    scored = [s for s in sequences if s.name in predictions]
    if not scored:
        raise ResultError("no sequence has a prediction to score")
    per_sequence, mismatch = [], {}
    for seq in scored:
        pred = np.asarray(predictions[seq.name], dtype=np.float64).reshape(-1, 4)
        n = len(seq.target.boxes)
        if n == 0 or len(pred) == 0:
            raise ResultError(f"{seq.name}: {len(pred)} result rows for {n} ground-truth frames "
                              "(an empty sequence cannot be scored)")
        if len(pred) != n:
            mismatch[seq.name] = {"result_rows": len(pred), "gt_frames": n}
        per_sequence.append(proto.eval_sequence(pred, seq))
    summary = {"protocol": proto.name, **proto.combine_sequences(scored, per_sequence)}
    summary["skipped"] = [s.name for s in sequences if s.name not in predictions]
    summary["length_mismatch"] = mismatch
    return summary


def evaluate_sot(gt: str | Path | Iterable, results_dir: str | Path, protocol: str = "tnl2k",
                 skip_missing: bool = False) -> dict:
    """Scores ``<results_dir>/<seq>.txt`` against ground truth (a folder in any official layout, read
    by :func:`sot_ground_truth`, or single-track ``vptracker.datasets`` Sequences) under ``protocol``
    (a name in ``SOT_PROTOCOLS``).

    Returns ``{"auc", "precision", "norm_precision", "per_sequence", "attributes", "curves", ...}``,
    numbers in percent. A missing result file raises unless ``skip_missing``.
    """
    sequences = _as_ground_truth(gt)
    predictions = load_results(results_dir, [s.name for s in sequences], skip_missing=skip_missing)
    result = score_sequences(sequences, predictions, protocol)
    result["results_dir"] = str(results_dir)
    return result


def write_sot_outputs(summary: dict, out_dir: str | Path) -> Path:
    """``summary.json`` and ``per_sequence.csv`` (and ``attributes.csv`` when there are any), with
    the columns the protocol names in ``fields``."""
    fields = protocol_class(summary["protocol"]).fields
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=1))
    for file, key, first, last in (("per_sequence.csv", "per_sequence", "sequence", "frames"),
                                   ("attributes.csv", "attributes", "attribute", "num_sequences")):
        if key == "attributes" and not summary.get("attributes"):
            continue
        with open(out_dir / file, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow([first, *fields, last])
            for name, s in summary[key].items():
                w.writerow([name, *(f"{s[f]:.4f}" for f in fields), s[last]])
    return out_dir / "summary.json"


def format_sot_table(summaries: dict[str, dict]) -> str:
    """A readable table, one row per tracker, with the report columns of each one's protocol."""
    lines = []
    for tracker, s in summaries.items():
        columns = protocol_class(s["protocol"]).columns
        head = f"{'tracker':<24} {'protocol':<8} {'seqs':>5} " + " ".join(f"{c:>7}" for c in columns)
        if not lines or lines[0] != head:
            lines += [head, "-" * len(head)]
        lines.append(f"{tracker:<24} {s['protocol']:<8} {s['num_sequences']:>5} "
                     + " ".join(f"{s[f]:>7.2f}" for f in columns.values()))
    return "\n".join(lines)
