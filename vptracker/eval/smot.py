"""BenSMOT semantic MOT: tracking (TrackEval HOTA/IDF1/MOTA) + video captions + instance captions.

The row of the BenSMOT table: video-caption BLEU/ROUGE/METEOR/CIDEr, instance-caption
BLEU/ROUGE/METEOR/CIDEr, then HOTA, IDF1, MOTA. "BLEU" in that table is BLEU-4.

Layout: ``<gt_root>/<category>/<seq>/gt/gt.txt``, ``video_caption.txt`` and
``instance_captions.txt``, read by the ``bensmot`` dataset reader that training uses
(annotation-first; the k-th caption belongs to gt id k). Predictions: ``<results>/<seq>.txt`` (MOTChallenge rows), ``video_captions.json``
(``{seq: caption}``) and ``instance_captions.json`` (``{"<seq>/<predicted track id>": caption}``).

An instance caption is scored against the ground-truth object its predicted track follows: the
track-to-object assignment maximises the number of frames matched at IoU >= 0.5 (the identity
assignment of IDF1); a gt object without a captioned track is scored against an empty caption.
Tracking uses TrackEval's MOT15 preprocessing (BenSMOT has no distractor classes to filter).
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment

from vptracker.boxes import iou_xywh_matrix
from vptracker.datasets import load
from vptracker.datasets.base import DatasetFormatError, Sequence
from vptracker.eval.captions import evaluate_captions, load_caption_file, nltk_wordnet
from vptracker.eval.mot import run_trackeval
from vptracker.eval.motfiles import read_mot_rows


def bensmot_sequences(gt_root: Path) -> list[Sequence]:
    """The sequences of a BenSMOT folder, read annotation-first by the training reader."""
    sequences = load("bensmot", gt_root, None, annotation_only=True, allow_missing=True)
    names = [s.name for s in sequences]
    if len(set(names)) != len(names):  # results are keyed by sequence name alone
        dup = sorted({n for n in names if names.count(n) > 1})
        raise DatasetFormatError(gt_root, None, f"unique sequence names across categories, found {dup[:5]}")
    return sequences


def track_assignment(gt: np.ndarray, pred: np.ndarray) -> dict[int, int]:
    """``{predicted id: gt id}`` maximising frames matched at IoU >= 0.5 over the sequence."""
    if not len(gt) or not len(pred):
        return {}
    gt_ids, pr_ids = np.unique(gt[:, 1].astype(int)), np.unique(pred[:, 1].astype(int))
    counts = np.zeros((len(gt_ids), len(pr_ids)))
    for frame in np.intersect1d(gt[:, 0], pred[:, 0]):
        g, p = gt[gt[:, 0] == frame], pred[pred[:, 0] == frame]
        hit = iou_xywh_matrix(g[:, 2:6], p[:, 2:6]) >= 0.5
        gi, pi = np.nonzero(hit)
        np.add.at(counts, (np.searchsorted(gt_ids, g[gi, 1].astype(int)),
                           np.searchsorted(pr_ids, p[pi, 1].astype(int))), 1)
    rows, cols = linear_sum_assignment(-counts)
    return {int(pr_ids[c]): int(gt_ids[r]) for r, c in zip(rows, cols) if counts[r, c] > 0}


def captions_by_gt(seq: str, to_gt: dict[int, int], inst_preds: dict[str, str]) -> dict[int, str]:
    """``{gt id: caption}`` from ``{"<seq>/<predicted track id>": caption}`` through ``to_gt``."""
    out = {}
    for key, caption in inst_preds.items():
        name, _, track = key.rpartition("/")
        if name == seq and track.lstrip("-").isdigit() and int(track) in to_gt:
            out[to_gt[int(track)]] = caption
    return out


def evaluate_smot(gt_root: str | Path, results_dir: str | Path, caption_protocol: str = "coco",
                  wordnet=None) -> dict:
    gt_root, results_dir = Path(gt_root), Path(results_dir)
    if caption_protocol == "smoter" and wordnet is None:
        wordnet = nltk_wordnet()  # fail before the tracking work when METEOR cannot run
    seqs = {s.name: s for s in bensmot_sequences(gt_root)}
    video_preds = load_caption_file(results_dir / "video_captions.json", many=False)
    inst_preds = load_caption_file(results_dir / "instance_captions.json", many=False)
    video_refs, inst_refs, inst_hyps, seq_info = {}, {}, {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        trk_dir = Path(tmp) / "trackers" / "tracker"
        trk_dir.mkdir(parents=True)
        for name, seq in seqs.items():
            seq_dir = Path(seq.folder)
            result = results_dir / f"{name}.txt"
            if not result.is_file():
                raise DatasetFormatError(result, None, "a MOTChallenge result file for the sequence")
            shutil.copyfile(result, trk_dir / f"{name}.txt")
            # checked here, against the user's paths (TrackEval later reads the copies)
            gt = read_mot_rows(seq_dir / "gt" / "gt.txt", "MOTChallenge gt.txt")
            pred = read_mot_rows(result, "MOTChallenge result file")
            seq_info[name] = max(len(seq), int(pred[:, 0].max()) if len(pred) else 0)
            if seq.caption is not None:
                video_refs[name] = [seq.caption]
            captions = {track.id: track.caption for track in seq.tracks if track.caption is not None}
            if captions:
                by_gt = captions_by_gt(name, track_assignment(gt, pred), inst_preds)
                for gid, caption in captions.items():
                    inst_refs[f"{name}/{gid}"] = [caption]
                    inst_hyps[f"{name}/{gid}"] = by_gt.get(gid, "")
        gt_dir = Path(tmp) / "gt"
        for name, seq in seqs.items():
            (gt_dir / name / "gt").mkdir(parents=True)
            shutil.copyfile(Path(seq.folder) / "gt" / "gt.txt", gt_dir / name / "gt" / "gt.txt")
        tracking = run_trackeval(gt_dir, trk_dir, seq_info, benchmark="MOT15")
    out = {"tracking": tracking, "caption_protocol": caption_protocol}
    if video_refs:
        out["video_caption"] = evaluate_captions(video_refs, {k: video_preds.get(k, "") for k in video_refs},
                                                 caption_protocol, wordnet=wordnet)
    if inst_refs:
        out["instance_caption"] = evaluate_captions(inst_refs, inst_hyps, caption_protocol, wordnet=wordnet)
    return out


def smot_table_row(result: dict) -> dict[str, float]:
    """The BenSMOT table's columns (captions as fractions, tracking in percent)."""
    row = {}
    for part, label in (("video_caption", "video"), ("instance_caption", "instance")):
        if part in result:
            c = result[part]
            row.update({f"{label} BLEU": c["BLEU-4"], f"{label} ROUGE": c["ROUGE-L"],
                        f"{label} METEOR": c["METEOR"], f"{label} CIDEr": c["CIDEr-D"]})
    comb = result["tracking"]["COMBINED"]
    row.update({"HOTA": comb["HOTA"], "IDF1": comb["IDF1"], "MOTA": comb["MOTA"]})
    return row
