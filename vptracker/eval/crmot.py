"""CRMOT (cross-view referring MOT) scores: CVRIDF1 and CVRMA, following the CRTrack devkit.

Per (scene, description) pair, the views' rows are merged into one sequence and scored with
TrackEval's metric classes on a plain data dict (loading here, scoring in the metric):

* CVRIDF1 = IDF1 with the views concatenated in time: view k's frames are offset by the running
  maximum frame (ground truth and predictions) of the views before it, plus one.
* CVRMA = MOTA with the views interleaved: frame ``f`` of view ``k`` (0-based) becomes timestep
  ``f * n_views + k``, IoU threshold 0.5, and :class:`DevkitCLEAR`'s ID-switch rule.

Protocol details kept from the devkit: predictions are ``x1,y1,x2,y2`` and converted to
``x,y,w,h``; prediction rows beyond the merged ground truth's last timestep are dropped; a negative
MOTA is clamped to 0; the reported numbers are the unweighted means over the pairs. With these
rules the published CRTracker in-domain outputs score 54.88 / 35.97, the numbers in the OmniPT
and CRTrack tables (stock TrackEval ID switches give CVRMA 35.69).

A prediction row with ``x2 < x1`` or ``y2 < y1`` cannot be a corner box. Files written as
``x,y,w,h`` have such rows on most lines and score without any error: the published CRTracker
outputs (no such row) rewritten as ``x,y,w,h`` have them on 97,138 of 97,865 rows and score
0.0 / 0.0. Such files are listed with their counts in ``not_corners`` and named in one warning;
``strict=True`` refuses the first one.
"""
from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import linear_sum_assignment
from trackeval.metrics import CLEAR, Identity

from vptracker.boxes import iou_xywh_matrix
from vptracker.datasets.base import DatasetFormatError
from vptracker.datasets.paths import subfolders
from vptracker.eval.motfiles import read_mot_rows

_VIEW = re.compile(r"^View(\d+)\.txt$")


@dataclass
class ViewRows:
    """One view of one pair: ``(frame, id, x, y, w, h)`` rows of ground truth and predictions."""

    view: str
    gt: np.ndarray
    pred: np.ndarray


def _rows(path: Path, corners: bool, not_corners: list[dict] | None = None, strict: bool = False) -> np.ndarray:
    """``(frame, id, x, y, w, h)`` rows; an empty file (a view without the target) has none.

    Prediction files (``corners``) with inverted rows are appended to ``not_corners`` (refused
    when ``strict``)."""
    what = "CRMOT prediction file (frame,id,x1,y1,x2,y2)" if corners else "CRMOT ground-truth file"
    table = read_mot_rows(path, what, sizes=not corners)
    if corners:
        inverted = int(((table[:, 4] < table[:, 2]) | (table[:, 5] < table[:, 3])).sum())
        if inverted and strict:
            raise DatasetFormatError(path, None, f"x1,y1,x2,y2 corners with x2 >= x1 and y2 >= y1 on every row, "
                                     f"{inverted} of {len(table)} rows are not (boxes written as x,y,w,h?)")
        if inverted and not_corners is not None:
            not_corners.append({"file": str(path), "inverted_rows": inverted, "rows": len(table)})
        table[:, 4:6] -= table[:, 2:4]
    return table


def load_pair(gt_dir: Path, pred_dir: Path | None, allow_missing: bool = False,
              missing: list[str] | None = None, not_corners: list[dict] | None = None,
              strict: bool = False) -> list[ViewRows]:
    """``<gt_dir>/gt/View<k>.txt`` (or ``<gt_dir>/View<k>.txt``) and ``<pred_dir>/View<k>.txt``.

    A missing prediction view raises unless ``allow_missing``; then it scores as an empty view
    and its name is appended to ``missing``. Prediction files whose rows cannot be corners go to
    ``not_corners`` (see the module docstring; ``strict`` refuses them)."""
    gt_views_dir = gt_dir / "gt" if (gt_dir / "gt").is_dir() else gt_dir
    names = sorted((p.name for p in gt_views_dir.iterdir() if _VIEW.match(p.name)),
                   key=lambda n: int(_VIEW.match(n).group(1)))
    if not names:
        raise DatasetFormatError(gt_views_dir, None, "ground-truth files View<k>.txt")
    views = []
    for name in names:
        gt = _rows(gt_views_dir / name, corners=False)
        if pred_dir is not None and (pred_dir / name).is_file():
            pred = _rows(pred_dir / name, corners=True, not_corners=not_corners, strict=strict)
        elif pred_dir is not None and not allow_missing:
            raise DatasetFormatError(pred_dir / name, None, "a prediction file for every ground-truth view "
                                     "(an empty file for a view without the target; --allow-missing scores "
                                     "missing ones as empty)")
        else:
            pred = np.empty((0, 6))
            if missing is not None and pred_dir is not None:
                missing.append(f"{gt_dir.name}/{name}")
        views.append(ViewRows(name[:-4], gt, pred))
    return views


def to_data_dict(gt: np.ndarray, pred: np.ndarray) -> dict:
    """TrackEval's per-sequence data dict from ``(timestep, id, x, y, w, h)`` rows (timesteps >= 0)."""
    # TrackEval wants ids numbered 0..n-1 within the sequence
    gt_ids, gt_map = np.unique(gt[:, 1].astype(np.int64), return_inverse=True)
    tr_ids, tr_map = np.unique(pred[:, 1].astype(np.int64), return_inverse=True)
    last = int(max(gt[:, 0].max() if len(gt) else -1, pred[:, 0].max() if len(pred) else -1))
    data = {"num_timesteps": last + 1, "num_gt_ids": len(gt_ids), "num_tracker_ids": len(tr_ids),
            "num_gt_dets": len(gt), "num_tracker_dets": len(pred),
            "gt_ids": [], "tracker_ids": [], "similarity_scores": []}
    gt_t, pr_t = gt[:, 0].astype(np.int64), pred[:, 0].astype(np.int64)
    gt_order, pr_order = np.argsort(gt_t, kind="stable"), np.argsort(pr_t, kind="stable")
    # Only timesteps with rows are visited, and a run of empty ones becomes a single empty step:
    # the metrics' state after one empty step equals that after many (CLEAR forgets the previous
    # match, the devkit rule forgets presence, Identity counts nothing), and a frame number of
    # 1e6 then costs nothing. ``num_timesteps`` keeps the true count.
    present = np.union1d(gt_t, pr_t)
    gt_bounds = np.searchsorted(gt_t[gt_order], np.append(present, present[-1] + 1) if len(present) else [0])
    pr_bounds = np.searchsorted(pr_t[pr_order], np.append(present, present[-1] + 1) if len(present) else [0])
    empty = (np.empty(0, dtype=int), np.empty(0, dtype=int), np.empty((0, 0)))
    previous = -1
    for k, t in enumerate(present):
        if t > previous + 1:
            for key, value in zip(("gt_ids", "tracker_ids", "similarity_scores"), empty):
                data[key].append(value)
        previous = t
        gi = gt_order[gt_bounds[k]:gt_bounds[k + 1]]
        pi = pr_order[pr_bounds[k]:pr_bounds[k + 1]]
        data["gt_ids"].append(gt_map[gi].astype(int))
        data["tracker_ids"].append(tr_map[pi].astype(int))
        data["similarity_scores"].append(iou_xywh_matrix(gt[gi, 2:6], pred[pi, 2:6]))
    return data


class DevkitCLEAR(CLEAR):
    """TrackEval's CLEAR with the CRTrack MATLAB devkit's ID-switch rule.

    The devkit counts an ID switch for a matched ground-truth object only when that object was
    also present (annotated) in the previous timestep; stock TrackEval counts it against the last
    match however long ago. Matching (continuity bonus, then Hungarian on IoU >= 0.5) is unchanged.
    """

    def eval_sequence(self, data):
        res = {field: 0 for field in self.fields}
        if data["num_tracker_dets"] == 0 or data["num_gt_dets"] == 0:
            return super().eval_sequence(data)
        prev_tracker_id = np.full(data["num_gt_ids"], np.nan)
        prev_timestep_tracker_id = np.full(data["num_gt_ids"], np.nan)
        present_before = np.zeros(data["num_gt_ids"], dtype=bool)
        eps = np.finfo("float").eps
        for gt_ids_t, tracker_ids_t, similarity in zip(data["gt_ids"], data["tracker_ids"],
                                                       data["similarity_scores"]):
            present_now = np.zeros_like(present_before)
            present_now[gt_ids_t] = True
            if len(gt_ids_t) == 0 or len(tracker_ids_t) == 0:
                res["CLR_FP"] += len(tracker_ids_t)
                res["CLR_FN"] += len(gt_ids_t)
                prev_timestep_tracker_id[:] = np.nan
                present_before = present_now
                continue
            score = 1000 * (tracker_ids_t[None, :] == prev_timestep_tracker_id[gt_ids_t[:, None]]) + similarity
            score[similarity < self.threshold - eps] = 0
            rows, cols = linear_sum_assignment(-score)
            keep = score[rows, cols] > eps
            rows, cols = rows[keep], cols[keep]
            matched_gt, matched_tr = gt_ids_t[rows], tracker_ids_t[cols]
            prev = prev_tracker_id[matched_gt]
            is_idsw = present_before[matched_gt] & ~np.isnan(prev) & (matched_tr != prev)
            res["IDSW"] += int(is_idsw.sum())
            prev_tracker_id[matched_gt] = matched_tr
            prev_timestep_tracker_id[:] = np.nan
            prev_timestep_tracker_id[matched_gt] = matched_tr
            present_before = present_now
            res["CLR_TP"] += len(rows)
            res["CLR_FN"] += len(gt_ids_t) - len(rows)
            res["CLR_FP"] += len(tracker_ids_t) - len(rows)
            res["MOTP_sum"] += float(similarity[rows, cols].sum())
        res["MOTP"] = res["MOTP_sum"] / max(1.0, res["CLR_TP"])
        res["CLR_Frames"] = data["num_timesteps"]
        return self._compute_final_fields(res)


def _drop_after_last_gt(gt: np.ndarray, pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # The devkit cuts the merged predictions at the merged ground truth's last timestep, not each
    # view at its own: earlier views' late predictions survive (and meet later views' frames).
    last = gt[:, 0].max() if len(gt) else -1
    return gt, pred[pred[:, 0] <= last]


def concatenated(views: list[ViewRows]) -> tuple[np.ndarray, np.ndarray]:
    """Views one after another in time (CVRIDF1); the offset after a view is the largest frame
    seen so far in its ground truth *or* predictions, plus one."""
    gts, preds, offset = [], [], 0
    for v in views:
        gt, pred = v.gt.copy(), v.pred.copy()
        gt[:, 0] += offset
        pred[:, 0] += offset
        gts.append(gt)
        preds.append(pred)
        frames = np.concatenate([gt[:, 0], pred[:, 0]])
        if len(frames):
            offset = int(frames.max()) + 1
    return _drop_after_last_gt(np.concatenate(gts), np.concatenate(preds))


def interleaved(views: list[ViewRows]) -> tuple[np.ndarray, np.ndarray]:
    """Frame ``f`` of view ``k`` at timestep ``f * n_views + k`` (CVRMA)."""
    n = len(views)
    gts, preds = [], []
    for k, v in enumerate(views):
        gt, pred = v.gt.copy(), v.pred.copy()
        gt[:, 0] = gt[:, 0] * n + k
        pred[:, 0] = pred[:, 0] * n + k
        gts.append(gt)
        preds.append(pred)
    return _drop_after_last_gt(np.concatenate(gts), np.concatenate(preds))


def score_pair(views: list[ViewRows]) -> dict[str, float]:
    """CVRIDF1 and CVRMA (percent) of one (scene, description) pair."""
    identity = Identity({"PRINT_CONFIG": False, "THRESHOLD": 0.5})
    clear = DevkitCLEAR({"PRINT_CONFIG": False, "THRESHOLD": 0.5})
    idf1 = identity.eval_sequence(to_data_dict(*concatenated(views)))["IDF1"]
    clr = clear.eval_sequence(to_data_dict(*interleaved(views)))
    return {"cvridf1": 100.0 * float(idf1), "cvrma": 100.0 * max(0.0, float(clr["MOTA"])),
            "mota_raw": 100.0 * float(clr["MOTA"]), "idsw": int(clr["IDSW"]),
            "gt_dets": int(sum(len(v.gt) for v in views))}


def evaluate_crmot(gt_root: str | Path, results_dir: str | Path, allow_missing: bool = False,
                   strict: bool = False) -> dict:
    """Every ``<gt_root>/<Scene>_<desc>/`` pair against ``<results_dir>/<Scene>_<desc>/View<k>.txt``.

    A missing prediction folder or view file raises unless ``allow_missing``: then it scores as
    an empty prediction (as a tracker that output nothing) and is listed in ``missing``. Files
    whose boxes cannot be corners are listed in ``not_corners`` and warned about, or refused when
    ``strict``.
    """
    gt_root, results_dir = Path(gt_root), Path(results_dir)
    pairs = subfolders(gt_root) if gt_root.is_dir() else []
    if not pairs:
        raise DatasetFormatError(gt_root, None, "one folder per (scene, description) with gt/View<k>.txt")
    if not results_dir.is_dir():
        raise DatasetFormatError(results_dir, None, "a results folder with <Scene>_<desc>/View<k>.txt")
    per_pair, missing, not_corners = {}, [], []
    for pair in pairs:
        pred_dir = results_dir / pair.name
        if not pred_dir.is_dir():
            if not allow_missing:
                raise DatasetFormatError(pred_dir, None, "a prediction folder with View<k>.txt (x1,y1,x2,y2); "
                                         "--allow-missing scores missing ones as empty")
            missing.append(pair.name)
            pred_dir = None
        per_pair[pair.name] = score_pair(load_pair(pair, pred_dir, allow_missing, missing, not_corners, strict))
    if not_corners:
        first = not_corners[0]
        warnings.warn(f"{len(not_corners)} CRMOT prediction files have rows with x2 < x1 or y2 < y1 "
                      f"({sum(f['inverted_rows'] for f in not_corners)} of {sum(f['rows'] for f in not_corners)} "
                      f"rows), e.g. {first['file']}: {first['inverted_rows']} of {first['rows']}; expected "
                      "x1,y1,x2,y2 corners (written as x,y,w,h?); scored as given, --strict refuses them",
                      stacklevel=2)
    return {"cvridf1": float(np.mean([p["cvridf1"] for p in per_pair.values()])),
            "cvrma": float(np.mean([p["cvrma"] for p in per_pair.values()])),
            "num_pairs": len(per_pair), "missing": missing, "not_corners": not_corners, "per_pair": per_pair}
