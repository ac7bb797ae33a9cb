"""GOT-10k's average overlap (AO) and success rates at 0.5 and 0.75 (SR0.5, SR0.75), as
got10k-toolkit's ``ExperimentGOT10k`` computes them.

Per sequence: the first frame is left out (it is the given box), both boxes are clipped to the
image (``rect_iou(..., bound=resolution)``: x into [0, W], w into [0, W - x], the same for y, h;
the resolution is ``meta_info.ini``'s, unknown sizes are not clipped), the IoU divides by
``union + eps`` and is clipped to [0, 1], and only frames whose target is visible (``cover > 0``)
are kept. AO is the mean of those IoUs, SR_t the fraction above ``t`` (strictly). The overall
numbers pool the frames of every sequence (a frame-weighted mean, not a mean of sequence
scores). A result of another length is refused, as the toolkit asserts equal shapes. Numbers are
in percent. Results are ``<seq>.txt`` of one run (the toolkit averages over repeated runs' files).
"""
from __future__ import annotations

from typing import ClassVar

import numpy as np

from vptracker.eval.sot import ResultError


def _bounded(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    out = boxes.copy()
    out[:, 0] = np.clip(out[:, 0], 0, width)
    out[:, 1] = np.clip(out[:, 1], 0, height)
    out[:, 2] = np.clip(out[:, 2], 0, width - out[:, 0])
    out[:, 3] = np.clip(out[:, 3], 0, height - out[:, 1])
    return out


def got10k_iou(pred: np.ndarray, gt: np.ndarray, width: int = 0, height: int = 0) -> np.ndarray:
    """got10k's ``rect_iou`` of ``(N, 4)`` x,y,w,h rows, clipped to a ``width`` x ``height`` image when known."""
    if width > 0 and height > 0:
        pred, gt = _bounded(pred, width, height), _bounded(gt, width, height)
    near = np.maximum(pred[:, :2], gt[:, :2])
    far = np.minimum(pred[:, :2] + pred[:, 2:], gt[:, :2] + gt[:, 2:])
    inter = np.clip(far - near, 0, None).prod(axis=1)
    union = pred[:, 2:].prod(axis=1) + gt[:, 2:].prod(axis=1) - inter
    return np.clip(inter / (union + np.finfo(float).eps), 0.0, 1.0)


def _scores(ious: np.ndarray) -> dict[str, float]:
    if len(ious) == 0:  # no visible frame after the first: got10k's mean of nothing
        return {"ao": float("nan"), "sr50": float("nan"), "sr75": float("nan")}
    return {"ao": 100.0 * float(ious.mean()), "sr50": 100.0 * float((ious > 0.5).mean()),
            "sr75": 100.0 * float((ious > 0.75).mean())}


class GOT10kProtocol:
    name = "got10k"
    fields = ("ao", "sr50", "sr75")
    columns: ClassVar[dict[str, str]] = {"AO": "ao", "SR0.5": "sr50", "SR0.75": "sr75"}

    def eval_sequence(self, pred: np.ndarray, seq) -> np.ndarray:
        """IoUs of the scored frames (after the first, target visible) of one Sequence."""
        track = seq.target
        if pred.shape != track.boxes.shape:
            raise ResultError(f"{seq.name}: {len(pred)} result rows for {len(track.boxes)} ground-truth frames "
                              "(got10k asserts equal shapes)")
        ious = got10k_iou(pred[1:], track.boxes[1:], seq.width, seq.height)
        return ious[track.visible[1:]]

    def combine_sequences(self, sequences: list, per_sequence: list[np.ndarray]) -> dict:
        pooled = np.concatenate(per_sequence)
        return {**_scores(pooled), "num_sequences": len(sequences), "num_frames": len(pooled),
                "per_sequence": {s.name: {**_scores(ious), "frames": len(ious)}
                                 for s, ious in zip(sequences, per_sequence)},
                "attributes": {}}
