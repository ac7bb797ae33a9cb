"""Box geometry: the ``Box`` type, xywh/xyxy conversions, clipping and validity, IoU (one pair,
row-wise arrays, pairwise matrices) and the in-image test for box arrays.

Part of :mod:`vptracker.boxes` (import from there); frame boxes are ``x1,y1,x2,y2`` in continuous
pixel coordinates (``x2 = x + w``).
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

Box = tuple[float, float, float, float]


# --------------------------------------------------------------------------- conversions

def xywh_to_xyxy(box: Sequence[float]) -> Box:
    x, y, w, h = (float(v) for v in box)
    return (x, y, x + w, y + h)


def xyxy_to_xywh(box: Sequence[float]) -> Box:
    x1, y1, x2, y2 = (float(v) for v in box)
    return (x1, y1, x2 - x1, y2 - y1)


def clip_xyxy(box: Sequence[float], width: float, height: float) -> Box:
    x1, y1, x2, y2 = (float(v) for v in box)
    return (min(max(x1, 0.0), width), min(max(y1, 0.0), height),
            min(max(x2, 0.0), width), min(max(y2, 0.0), height))


def is_valid_xyxy(box: Sequence[float] | None, width: float | None = None,
                  height: float | None = None) -> bool:
    """Finite, not inverted, non-empty and, when the image size is given, overlapping the image."""
    if box is None or len(box) != 4:
        return False
    x1, y1, x2, y2 = box
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)) or x2 <= x1 or y2 <= y1:
        return False
    if width is not None and height is not None:
        return x2 > 0 and y2 > 0 and x1 < width and y1 < height
    return True


# --------------------------------------------------------------------------- IoU

def iou_xyxy(a: Sequence[float], b: Sequence[float]) -> float:
    """Continuous IoU of two ``x1,y1,x2,y2`` boxes; 0 for empty or invalid boxes."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / union) if union > 0 else 0.0


def iou_xywh(a: Sequence[float], b: Sequence[float]) -> float:
    return iou_xyxy(xywh_to_xyxy(a), xywh_to_xyxy(b))


def iou_xywh_arrays(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise IoU of two ``(N, 4)`` x,y,w,h arrays (continuous, the toolkits' ``+1`` reading)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    iw = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    ih = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    inter = np.clip(iw, 0, None) * np.clip(ih, 0, None)
    union = a[:, 2] * a[:, 3] + b[:, 2] * b[:, 3] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(union > 0, inter / union, 0.0)
    return out


# --------------------------------------------------------------------------- box arrays

def xywh_in_image(boxes: np.ndarray, width: float, height: float) -> np.ndarray:
    """Per box (the last axis is x,y,w,h): non-empty and overlapping the ``width`` x ``height``
    image, i.e. something is left after :func:`clip_xyxy`. A ``(4,)`` box gives one bool."""
    b = np.asarray(boxes)
    x, y, w, h = b[..., 0], b[..., 1], b[..., 2], b[..., 3]
    return (w > 0) & (h > 0) & (x < width) & (y < height) & (x + w > 0) & (y + h > 0)


def _pairwise_iou(a: tuple, b: tuple) -> np.ndarray:
    """IoU of every ``a`` box with every ``b`` box from corner and area columns ``(x1, y1, x2, y2,
    area)``; 0 where the boxes do not overlap or the union is empty."""
    ax1, ay1, ax2, ay2, a_area = (v[:, None] for v in a)
    bx1, by1, bx2, by2, b_area = (v[None, :] for v in b)
    iw = np.clip(np.minimum(ax2, bx2) - np.maximum(ax1, bx1), 0, None)
    ih = np.clip(np.minimum(ay2, by2) - np.maximum(ay1, by1), 0, None)
    inter = iw * ih
    union = a_area + b_area - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def iou_xywh_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``(N, M)`` IoU of ``(N, 4)`` and ``(M, 4)`` x,y,w,h arrays (areas ``w * h``, as TrackEval's
    ``_calculate_box_ious``)."""
    return _pairwise_iou(_xywh_columns(a), _xywh_columns(b))


def iou_xyxy_matrix(a: Iterable[Sequence[float]], b: Iterable[Sequence[float]]) -> np.ndarray:
    """``(N, M)`` IoU of two lists of ``x1,y1,x2,y2`` boxes; entry ``[i, j]`` equals
    ``iou_xyxy(a[i], b[j])``."""
    return _pairwise_iou(_xyxy_columns(a), _xyxy_columns(b))


def _xywh_columns(boxes) -> tuple:
    m = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return m[:, 0], m[:, 1], m[:, 0] + m[:, 2], m[:, 1] + m[:, 3], m[:, 2] * m[:, 3]


def _xyxy_columns(boxes) -> tuple:
    m = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return m[:, 0], m[:, 1], m[:, 2], m[:, 3], (m[:, 2] - m[:, 0]) * (m[:, 3] - m[:, 1])
