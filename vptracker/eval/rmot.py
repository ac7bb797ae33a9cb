"""Refer-KITTI(-V2) RMOT evaluation: one TrackEval sequence per (video, expression), COMBINED over all.

Ground truth comes from the ``refer_kitti`` dataset reader that training uses, as the RMOT/TempRMOT
evaluation builds it: an expression's tracks are the ids its ``label`` lists in each frame, boxes
from ``KITTI/labels_with_ids`` in pixels, written in MOTChallenge form at frame ``index + 1``.

Expression names may contain commas (and spaces), which TrackEval's seqmap CSV would split; each
expression-sequence is therefore given a safe internal name and mapped back in the results.
Predictions: ``<results>/<vid>/<expression>/predict.txt`` (the RMOT layout) or
``<results>/<vid>/<expression>.txt``, MOTChallenge rows in pixels.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from vptracker.datasets import load
from vptracker.datasets.base import DatasetFormatError, Sequence
from vptracker.eval.mot import run_trackeval
from vptracker.eval.motfiles import clean_mot_file

REFER_KITTI_TEST_VIDEOS = ("0005", "0011", "0013", "0019")


def expression_rows(seq: Sequence) -> np.ndarray:
    """MOTChallenge gt rows ``frame,id,x,y,w,h,1,1,1`` of one expression-sequence, by frame then id."""
    rows = [[seq.frame_ids[t] + 1, track.id, *track.boxes[t], 1, 1, 1]
            for track in seq.tracks for t in np.flatnonzero(track.visible)]
    rows.sort(key=lambda r: (r[0], r[1]))
    return np.asarray(rows, dtype=np.float64).reshape(-1, 9)


def _prediction_file(results_dir: Path, video: str, expression: str) -> Path:
    for candidate in (results_dir / video / expression / "predict.txt", results_dir / video / f"{expression}.txt"):
        if candidate.is_file():
            return candidate
    raise DatasetFormatError(results_dir / video / expression / "predict.txt", None,
                             "a prediction file for the expression (or <vid>/<expression>.txt)")


def evaluate_rmot(data_root: str | Path, results_dir: str | Path, videos: tuple[str, ...] = REFER_KITTI_TEST_VIDEOS,
                  image_sizes: dict[str, tuple[int, int]] | None = None, benchmark: str = "MOT17") -> dict:
    """HOTA/CLEAR/Identity per expression-sequence (``"<vid>/<expression>"``) and COMBINED."""
    data_root, results_dir = Path(data_root), Path(results_dir)
    sequences = load("refer_kitti", data_root, None, videos=list(videos), annotation_only=True,
                     image_sizes=image_sizes)
    with tempfile.TemporaryDirectory() as tmp:
        gt_dir, trk_dir = Path(tmp) / "gt", Path(tmp) / "trackers" / "tracker"
        trk_dir.mkdir(parents=True)
        seq_info, names = {}, {}
        for seq in sequences:
            safe = f"seq{len(seq_info):05d}"
            (gt_dir / safe / "gt").mkdir(parents=True)
            # integer frame and id columns: TrackEval keys timesteps by the text of column 1
            np.savetxt(gt_dir / safe / "gt" / "gt.txt", expression_rows(seq), delimiter=",",
                       fmt=["%d", "%d", "%.6f", "%.6f", "%.6f", "%.6f", "%d", "%d", "%d"])
            # checked against the user's path before it gets an internal name
            clean_mot_file(_prediction_file(results_dir, seq.scene, seq.expression), trk_dir / f"{safe}.txt",
                           "MOTChallenge result file")
            seq_info[safe] = len(seq)
            names[safe] = seq.name
        out = run_trackeval(gt_dir, trk_dir, seq_info, benchmark)
    out["per_sequence"] = {names[k]: v for k, v in out["per_sequence"].items()}
    out["num_expressions"] = len(names)
    return out
