"""SOT metrics: success (AUC), precision and normalised precision under four named protocols.

The communities disagree on what a frame without a valid target counts as, and published numbers
move by more than 1.5 AUC because of it, so each reading is a protocol of its own (SPEC section 7):

* ``tnl2k``  - the TNL2K MATLAB toolkit (``calc_seq_err_robust`` with absent flags) as written.
* ``ostrack`` - the released VPTracker ``evaluation/extract_results.py`` (OSTrack's
  ``lib/test/analysis/extract_results.py`` plus one line: negative predicted values become 0).
* ``lasot``  - current pytracking ``analysis/extract_results.py`` in LaSOT mode (visibility flags).
* ``otb``    - got10k's ``ExperimentOTB``.

Shape (TrackEval's): a protocol is a class naming the ``fields`` it reports; ``eval_sequence``
scores one ``vptracker.datasets`` Sequence (per-frame errors, :meth:`Protocol.frame_errors`) and
``combine_sequences`` turns them into curves averaged over sequences and per attribute. Protocols
are chosen by name from :data:`SOT_PROTOCOLS` (one line each, at the bottom; GOT-10k's AO/SR is
``vptracker.eval.got10k``). Nothing here opens a file.

Shared conventions: IoU with ``x2 = x+w-1`` and ``+1`` in the overlap (identical to continuous
``x+w``); centre ``x+(w-1)/2``; success counts ``IoU > t`` (strictly), precision ``error <= t``;
the first frame's prediction is replaced by the ground truth and counted; the denominator is every
frame of the sequence (invalid frames stay in it) and curves are averaged over sequences.
"""
from __future__ import annotations

import abc
import importlib
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from vptracker.boxes import iou_xywh_arrays
from vptracker.datasets.sot import attribute_names
from vptracker.registry import Registry

PRECISION_PIXELS = 20
NORM_PRECISION_AT = 0.20


def matlab_colon(start: float, step: float, stop: float) -> np.ndarray:
    """MATLAB's ``start:step:stop``: first half counted up from start, second half down from stop.

    For 0:0.05:1 it differs from ``numpy.arange`` in the last bit of 0.6, 0.65, 0.7, 0.85 and 0.95
    (one ulp lower), which decides ties such as an IoU of exactly 0.6 (a 3x5 box in a 5x5 one).
    Only for ranges whose last value is ``stop``, as the toolkits' are.
    """
    n = int(np.floor((stop - start) / step + 1e-10)) + 1
    k = np.arange(n, dtype=np.float64)
    half = n // 2
    out = start + k * step
    out[half:] = stop - (n - 1 - k[half:]) * step
    return out


@dataclass(frozen=True)
class Thresholds:
    overlap: np.ndarray
    center: np.ndarray
    norm_center: np.ndarray

    @property
    def precision_index(self) -> int:
        return int(np.argmin(np.abs(self.center - PRECISION_PIXELS)))

    @property
    def norm_precision_index(self) -> int:
        return int(np.argmin(np.abs(self.norm_center - NORM_PRECISION_AT)))


# got10k's np.linspace(0, 1, 21) is exactly k*0.05. pytracking's torch.arange(0, 1.05, 0.05) is not:
# it sits one ulp above k*0.05 at 0.65 and 0.75 (tests compare with torch). MATLAB's colon differs again.
PYTHON_THRESHOLDS = Thresholds(np.arange(21, dtype=np.float64) * 0.05, np.arange(51, dtype=np.float64),
                               np.arange(51, dtype=np.float64) / 100.0)
_TORCH_OVERLAP = np.arange(21, dtype=np.float64) * 0.05
_TORCH_OVERLAP[[13, 15]] = np.nextafter(_TORCH_OVERLAP[[13, 15]], 2.0)
PYTRACKING_THRESHOLDS = Thresholds(_TORCH_OVERLAP, PYTHON_THRESHOLDS.center, PYTHON_THRESHOLDS.norm_center)
MATLAB_THRESHOLDS = Thresholds(matlab_colon(0.0, 0.05, 1.0), np.arange(51, dtype=np.float64),
                               np.arange(51, dtype=np.float64) / 100.0)


def _centres(boxes: np.ndarray) -> np.ndarray:
    return boxes[:, :2] + (boxes[:, 2:] - 1.0) / 2.0


def _forward_fill(pred: np.ndarray, replace: np.ndarray) -> np.ndarray:
    """Rows flagged in ``replace`` (never row 0) take the nearest earlier unflagged row, as the
    toolkits' sequential ``results(i,:) = results(i-1,:)`` loops do."""
    keep = ~replace
    keep[0] = True
    src = np.maximum.accumulate(np.where(keep, np.arange(len(pred)), 0))
    return pred[src]


def _pixel_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """pytracking's ``calc_iou_overlap`` operation by operation: ``x2 = x+w-1``, ``+1`` in the overlap."""
    tl = np.maximum(a[:, :2], b[:, :2])
    br = np.minimum(a[:, :2] + a[:, 2:] - 1.0, b[:, :2] + b[:, 2:] - 1.0)
    inter = np.clip(br - tl + 1.0, 0, None).prod(axis=1)
    return inter / (a[:, 2:].prod(axis=1) + b[:, 2:].prod(axis=1) - inter)


class ResultError(ValueError):
    """A result file the protocol's reference toolkit refuses (names the sequence and why)."""


def sequence_attributes(seq) -> dict[str, bool]:
    """``{attribute: present}`` of a dataset Sequence (OTB: names; TNL2K, TNLLT: 0/1 flags)."""
    raw = seq.attributes.get("attributes")
    if isinstance(raw, str):
        return {a.strip(): True for a in raw.split(",") if a.strip()}
    if raw is not None and np.ndim(raw) == 1:
        return {name: bool(v) for name, v in zip(attribute_names(np.asarray(raw)), raw)}
    return {}


class Protocol(abc.ABC):
    """Turns one sequence into per-frame errors ``(overlap, center, norm_center)``.

    ``pred`` and ``gt`` are ``(N, 4)`` x,y,w,h; ``visible`` is ``(N,)`` bool or None. A frame error
    of NaN is in no numerator (it still counts in the denominator, the sequence length).
    """

    name = ""
    thresholds = PYTHON_THRESHOLDS
    fields = ("auc", "precision", "norm_precision")
    columns: ClassVar[dict[str, str]] = {"AUC": "auc", "P": "precision", "P_norm": "norm_precision"}  # report column -> field

    def eval_sequence(self, pred: np.ndarray, seq) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """One dataset Sequence (a single track) against its ``(N, 4)`` predictions."""
        track = seq.target
        return self.frame_errors(pred, track.boxes, track.visible, seq.name)

    def combine_sequences(self, sequences: list, per_sequence: list) -> dict:
        """Curves of every sequence (their frame errors, in order), averaged; also per attribute."""
        lengths = np.asarray([len(errors[0]) for errors in per_sequence])
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
        curves = sequence_curves_batch(*(np.concatenate([e[k] for e in per_sequence]) for k in range(3)),
                                       starts, lengths, self.thresholds)
        t = self.thresholds
        summary = self._scores(curves)
        summary.update({
            "num_sequences": len(sequences), "num_frames": int(lengths.sum()),
            "curves": {"overlap_thresholds": t.overlap.tolist(), "center_thresholds": t.center.tolist(),
                       "norm_center_thresholds": t.norm_center.tolist(),
                       "success": (100 * curves.success.mean(0)).tolist(),
                       "precision": (100 * curves.precision.mean(0)).tolist(),
                       "norm_precision": (100 * curves.norm_precision.mean(0)).tolist()},
            "per_sequence": {s.name: {**self._scores(curves, i), "frames": int(lengths[i])}
                             for i, s in enumerate(sequences)},
        })
        flags = [sequence_attributes(s) for s in sequences]
        summary["attributes"] = {}
        for name in sorted({a for f in flags for a, on in f.items() if on}):
            rows = np.array([i for i, f in enumerate(flags) if f.get(name)])
            summary["attributes"][name] = {**self._scores(curves, rows), "num_sequences": len(rows)}
        return summary

    def _scores(self, curves: Curves, rows=slice(None)) -> dict[str, float]:
        # one row index keeps the numbers of that sequence; several are averaged over sequences
        t = self.thresholds
        success, precision = np.atleast_2d(curves.success[rows]), np.atleast_2d(curves.precision[rows])
        norm_precision = np.atleast_2d(curves.norm_precision[rows])
        return {"auc": 100.0 * float(success.mean(0).mean()),
                "precision": 100.0 * float(precision.mean(0)[t.precision_index]),
                "norm_precision": 100.0 * float(norm_precision.mean(0)[t.norm_precision_index])}

    @abc.abstractmethod
    def frame_errors(self, pred: np.ndarray, gt: np.ndarray, visible: np.ndarray | None,
                     seq: str = "") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per-frame overlap, centre error (pixels) and normalised centre error."""


class TNL2KProtocol(Protocol):
    """The TNL2K MATLAB toolkit.

    Quirks kept on purpose: results with NaN or non-positive w/h take the previous row; absent
    frames are removed before scoring but the curve is still divided by the full length (a miss);
    a visible frame whose gt has any value <= 0 (touching x=0 or y=0, negative, empty) gets
    overlap -1 (a miss) and centre error -1, which is a *hit* at every precision and normalised
    precision threshold.
    """

    name = "tnl2k"
    thresholds = MATLAB_THRESHOLDS

    def frame_errors(self, pred, gt, visible, seq=""):
        n = len(gt)
        if len(pred) < n:
            raise ResultError(f"{seq}: {len(pred)} result rows for {n} ground-truth frames (the toolkit "
                              "indexes past the end of such a result)")
        pred = pred[:n].copy()
        bad = np.isnan(pred).any(axis=1) | (pred[:, 2] <= 0) | (pred[:, 3] <= 0)
        pred = _forward_fill(pred, bad & ~np.isnan(gt).any(axis=1))
        pred[0] = gt[0]
        valid_gt = (gt > 0).all(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            overlap = np.where(valid_gt, iou_xywh_arrays(pred, gt), -1.0)
            diff = _centres(pred) - _centres(gt)
            center = np.where(valid_gt, np.hypot(diff[:, 0], diff[:, 1]), -1.0)
            nd = diff / gt[:, 2:]
            norm_center = np.where(valid_gt, np.hypot(nd[:, 0], nd[:, 1]), -1.0)
        if visible is not None:
            # Removed from the numerator only: NaN never passes `>` or `<=`.
            absent = ~visible
            overlap[absent] = np.nan
            center[absent] = np.nan
            norm_center[absent] = np.nan
        return overlap, center, norm_center


class PytrackingProtocol(Protocol):
    """``calc_seq_err_robust`` of the two pytracking-family scripts.

    ``ostrack`` is the released VPTracker ``extract_results.py`` (dataset ``tnl2k``, no visibility
    flags): every negative predicted value is set to 0 first (so negative widths are carried
    forward like zero ones instead of refused), and a frame is valid when gt w and h are > 0.
    OSTrack's own script lacks the clamp; its trackers clip boxes to the image, so on their
    outputs the two agree. Short results are padded with zero boxes (misses).

    ``lasot`` is current pytracking master in LaSOT mode: no clamp (a negative width is refused),
    a frame is valid only when all four gt values are > 0 (``(anno_bb > 0.0).sum(1) == 4``) and
    the target is visible, and a result shorter than the gt is refused.

    Invalid frames get overlap -1, centre error infinity and normalised centre error -1 (the
    known quirk: a hit for normalised precision); ``lasot`` then sets both centre errors of
    invisible frames to infinity, so there they miss everywhere.
    """

    thresholds = PYTRACKING_THRESHOLDS
    use_visibility = False

    def frame_errors(self, pred, gt, visible, seq=""):
        pred = pred.copy()
        if not self.use_visibility:
            pred[pred < 0] = 0.0  # released VPTracker: pred_bb[pred_bb < 0] = 0 before scoring
        if np.isnan(pred).any() or (pred[:, 2:] < 0).any():
            raise ResultError(f"{seq}: result holds NaN or negative width/height (pytracking: 'Invalid results')")
        if np.isnan(gt).any():
            raise ResultError(f"{seq}: NaNs in annotation")
        n = len(gt)
        if len(pred) > n:
            pred = pred[:n]  # both scripts cut longer results
        zero = (pred[:, 2:] == 0).any(axis=1)
        if zero.any():
            pred = _forward_fill(pred, zero)  # gt rows have no NaN here
        if len(pred) < n:
            if self.use_visibility:
                raise ResultError(f"{seq}: mis-match in tracker prediction ({len(pred)}) and GT ({n}) lengths")
            pred = np.concatenate([pred, np.zeros((n - len(pred), 4))])
        pred[0] = gt[0]
        use_vis = self.use_visibility and visible is not None
        if self.use_visibility:
            valid = (gt > 0).all(axis=1)
        else:
            valid = (gt[:, 2:] > 0).all(axis=1)
        if use_vis:
            valid &= visible
        # The scripts' own float operations, so that ties at a threshold fall the same way.
        pc, gc = _centres(pred), _centres(gt)
        with np.errstate(divide="ignore", invalid="ignore"):
            center = np.sqrt(((pc - gc) ** 2).sum(1))
            norm = np.sqrt(((pc / gt[:, 2:] - gc / gt[:, 2:]) ** 2).sum(1))
            overlap = np.where(valid, _pixel_iou(pred, gt), -1.0)
        center = np.where(valid, center, np.inf)
        norm_center = np.where(valid, norm, -1.0)
        if use_vis:
            center[~visible] = np.inf
            norm_center[~visible] = np.inf
        return overlap, center, norm_center


class OTBProtocol(Protocol):
    """got10k ``ExperimentOTB``: no absent frames; a result of another length is refused
    (``assert len(boxes) == len(anno)``; forks that cut both to the shorter inflate short results).

    got10k's IoU divides by ``union + eps`` and clips to [0, 1]. got10k reports no normalised
    precision; ours uses the pytracking rule (invalid gt frames are hits) so the number exists.
    """

    name = "otb"

    def frame_errors(self, pred, gt, visible, seq=""):
        if len(pred) != len(gt):
            raise ResultError(f"{seq}: {len(pred)} result rows for {len(gt)} ground-truth frames "
                              "(got10k asserts equal lengths)")
        pred = pred.copy()
        pred[0] = gt[0]
        far = np.minimum(pred[:, :2] + pred[:, 2:], gt[:, :2] + gt[:, 2:])
        near = np.maximum(pred[:, :2], gt[:, :2])
        inter = np.clip(far - near, 0, None).prod(axis=1)
        union = pred[:, 2] * pred[:, 3] + gt[:, 2] * gt[:, 3] - inter
        overlap = np.clip(inter / (union + np.finfo(float).eps), 0.0, 1.0)
        diff = _centres(pred) - _centres(gt)
        center = np.hypot(diff[:, 0], diff[:, 1])
        valid = (gt[:, 2:] > 0).all(axis=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            nd = diff / gt[:, 2:]
        norm_center = np.where(valid, np.hypot(nd[:, 0], nd[:, 1]), -1.0)
        return overlap, center, norm_center


class OSTrackProtocol(PytrackingProtocol):
    name = "ostrack"


class LaSOTProtocol(PytrackingProtocol):
    name = "lasot"
    use_visibility = True


# name -> "module:Class"; imported when chosen, so the CLI lists choices without importing them.
SOT_PROTOCOLS: Registry[str] = Registry("SOT protocol")
SOT_PROTOCOLS.add("tnl2k", "vptracker.eval.sot:TNL2KProtocol")
SOT_PROTOCOLS.add("ostrack", "vptracker.eval.sot:OSTrackProtocol")
SOT_PROTOCOLS.add("lasot", "vptracker.eval.sot:LaSOTProtocol")
SOT_PROTOCOLS.add("otb", "vptracker.eval.sot:OTBProtocol")
SOT_PROTOCOLS.add("got10k", "vptracker.eval.got10k:GOT10kProtocol")
PROTOCOLS = tuple(SOT_PROTOCOLS.names())


def protocol_class(name: str) -> type:
    module, cls = SOT_PROTOCOLS.get(name).split(":")
    return getattr(importlib.import_module(module), cls)


def get_protocol(name: str):
    return protocol_class(name)()


@dataclass
class Curves:
    """Success / precision / normalised-precision curves (fractions, one value per threshold)."""

    success: np.ndarray
    precision: np.ndarray
    norm_precision: np.ndarray


def sequence_curves(overlap: np.ndarray, center: np.ndarray, norm_center: np.ndarray,
                    thresholds: Thresholds, length: int | None = None) -> Curves:
    """One sequence's curves; ``length`` is the denominator (all frames unless given)."""
    n = len(overlap) if length is None else length
    if n <= 0:
        raise ValueError("a sequence with no frames cannot be scored")
    with np.errstate(invalid="ignore"):
        success = (overlap[:, None] > thresholds.overlap[None, :]).sum(0) / n
        precision = (center[:, None] <= thresholds.center[None, :]).sum(0) / n
        norm_precision = (norm_center[:, None] <= thresholds.norm_center[None, :]).sum(0) / n
    return Curves(success, precision, norm_precision)


def sequence_curves_batch(overlap: np.ndarray, center: np.ndarray, norm_center: np.ndarray,
                          starts: np.ndarray, lengths: np.ndarray, thresholds: Thresholds) -> Curves:
    """Curves of many sequences concatenated frame-wise (``starts`` offsets, ``lengths`` denominators).

    Same numbers as :func:`sequence_curves` per sequence; each frame is placed once among the
    sorted thresholds (a histogram per sequence) instead of being compared with every threshold.
    """
    seq_of = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, len(overlap))))
    n_seq = len(starts)

    def histogram(position: np.ndarray, size: int) -> np.ndarray:
        flat = np.bincount(seq_of * size + position, minlength=n_seq * size)
        return flat.reshape(n_seq, size).astype(np.float64)

    def strict_curve(values: np.ndarray, thr: np.ndarray) -> np.ndarray:
        # value > thr[j] for exactly j < k, k = number of thresholds below the value
        t = len(thr)
        k = np.where(np.isnan(values), 0, np.searchsorted(thr, values, side="left"))
        hist = histogram(k, t + 1)
        return hist[:, ::-1].cumsum(1)[:, ::-1][:, 1:]

    def loose_curve(values: np.ndarray, thr: np.ndarray) -> np.ndarray:
        # value <= thr[j] for exactly j >= m, m = first threshold not below the value
        t = len(thr)
        m = np.where(np.isnan(values), t, np.searchsorted(thr, values, side="left"))
        return histogram(m, t + 1).cumsum(1)[:, :t]

    lengths = np.asarray(lengths, dtype=np.float64)[:, None]
    return Curves(strict_curve(overlap, thresholds.overlap) / lengths,
                  loose_curve(center, thresholds.center) / lengths,
                  loose_curve(norm_center, thresholds.norm_center) / lengths)
