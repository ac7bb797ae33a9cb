"""Refer-KITTI(-V2) RMOT evaluation: one TrackEval sequence per (video, expression), COMBINED over all.

Ground truth is built from the dataset, as the RMOT/TempRMOT evaluation does: for each frame key
``f`` (0-based image index) of an expression's ``label`` dict, the listed track ids are taken from
``KITTI/labels_with_ids/image_02/<vid>/%06d.txt`` (``c tid x/W y/H w/W h/H``, top-left corner,
normalised) and written in MOTChallenge form at frame ``f + 1`` in pixels.

Expression names may contain commas (and spaces), which TrackEval's seqmap CSV would split; each
expression-sequence is therefore given a safe internal name and mapped back in the results.
Predictions: ``<results>/<vid>/<expression>/predict.txt`` (the RMOT layout) or
``<results>/<vid>/<expression>.txt``, MOTChallenge rows in pixels.
"""
from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np

from vptracker.datasets.base import DatasetFormatError
from vptracker.datasets.textfiles import read_table
from vptracker.eval.mot import run_trackeval
from vptracker.eval.motfiles import clean_mot_file

REFER_KITTI_TEST_VIDEOS = ("0005", "0011", "0013", "0019")


def image_size(video_dir: Path) -> tuple[int, int]:
    """``(width, height)`` from the first frame's header (nothing is decoded)."""
    from PIL import Image

    frames = sorted(video_dir.glob("*.png")) + sorted(video_dir.glob("*.jpg"))
    if not frames:
        raise DatasetFormatError(video_dir, None, "KITTI frames (*.png) to read the image size from; "
                                 "or pass --image-size W H")
    with Image.open(frames[0]) as im:
        return im.size


def _labels(label_dir: Path) -> dict[int, np.ndarray]:
    out = {}
    for path in sorted(label_dir.glob("*.txt")):
        try:
            frame = int(path.stem)
        except ValueError:
            raise DatasetFormatError(path, None, "a label file named by its 0-based frame index (%06d.txt)") from None
        out[frame] = read_table(path, 6)[:, :6] if path.stat().st_size else np.empty((0, 6))
    return out


def expression_rows(expression: dict, labels: dict[int, np.ndarray], width: int, height: int,
                    source: Path) -> np.ndarray:
    """MOTChallenge gt rows ``frame,id,x,y,w,h,1,1,1`` of one expression."""
    label = expression.get("label")
    if not isinstance(label, dict):
        raise DatasetFormatError(source, None, 'an expression JSON with a "label": {frame: [ids]} object')
    rows = []
    for frame_key, ids in label.items():
        frame = int(frame_key)
        table = labels.get(frame)
        if table is None or not len(table):
            continue
        for row in table[np.isin(table[:, 1].astype(int), np.asarray(ids, dtype=int))]:
            _, tid, x, y, w, h = row
            rows.append([frame + 1, int(tid), x * width, y * height, w * width, h * height, 1, 1, 1])
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
    kitti = data_root / "KITTI"
    with tempfile.TemporaryDirectory() as tmp:
        gt_dir, trk_dir = Path(tmp) / "gt", Path(tmp) / "trackers" / "tracker"
        trk_dir.mkdir(parents=True)
        seq_info, names = {}, {}
        for video in videos:
            label_dir = kitti / "labels_with_ids" / "image_02" / video
            expr_dir = data_root / "expression" / video
            if not label_dir.is_dir() or not expr_dir.is_dir():
                raise DatasetFormatError(label_dir if not label_dir.is_dir() else expr_dir, None,
                                         "Refer-KITTI labels_with_ids/image_02/<vid>/ and expression/<vid>/")
            labels = _labels(label_dir)
            size = (image_sizes or {}).get(video) or image_size(kitti / "training" / "image_02" / video)
            frames_dir = kitti / "training" / "image_02" / video
            n_frames = len(list(frames_dir.glob("*.png"))) if frames_dir.is_dir() else 0
            length = max(n_frames, max(labels, default=-1) + 1)
            for expr_path in sorted(expr_dir.glob("*.json")):
                expression = json.loads(expr_path.read_text(encoding="utf-8"))
                rows = expression_rows(expression, labels, size[0], size[1], expr_path)
                safe = f"seq{len(seq_info):05d}"
                (gt_dir / safe / "gt").mkdir(parents=True)
                # integer frame and id columns: TrackEval keys timesteps by the text of column 1
                np.savetxt(gt_dir / safe / "gt" / "gt.txt", rows, delimiter=",",
                           fmt=["%d", "%d", "%.6f", "%.6f", "%.6f", "%.6f", "%d", "%d", "%d"])
                # checked against the user's path before it gets an internal name
                clean_mot_file(_prediction_file(results_dir, video, expr_path.stem), trk_dir / f"{safe}.txt",
                               "MOTChallenge result file")
                seq_info[safe] = length
                names[safe] = f"{video}/{expr_path.stem}"
        if not seq_info:
            raise DatasetFormatError(data_root / "expression", None, "expression JSON files for the videos")
        out = run_trackeval(gt_dir, trk_dir, seq_info, benchmark)
    out["per_sequence"] = {names[k]: v for k, v in out["per_sequence"].items()}
    out["num_expressions"] = len(names)
    return out
