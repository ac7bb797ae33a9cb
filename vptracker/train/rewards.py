"""GRPO rewards of the OmniPT paper (SPEC section 6), as plain functions and an ms-swift ORM plugin.

Load with ``--external_plugins vptracker/train/rewards.py --reward_funcs omnipt_format`` (stage 1)
or ``omnipt_iou`` (stage 4). ``solution`` is the ground-truth answer written in the same grammar
and the same coordinates as the model's answer (0-1000 by default); IoU does not depend on the
scale as long as both sides share it, so no conversion happens here.

Per-box score. The format score ``R`` reads how a box was written (:class:`vptracker.boxes.Form`):
2 for ``<bbox>x,y,w,h</bbox>`` (set 1), 0.6 for a box in another form such as ``(x1,y1,x2,y2)``
(set 2), 0.4 for four bare numbers without tags (set 3), 0 when there is no box. Stage 1 scores a
box ``R * (IoU / 2 + 0.5)``, stage 4 ``R * IoU``.

Multi-frame aggregation (our choice; the paper only defines single boxes). An answer is read as
one slot per frame (``<bbox>`` or ``<None>``), per trajectory:

* a ``<None>`` slot is written in the exact grammar, so its ``R`` is 2; its overlap is 1 when the
  ground truth is also ``<None>`` (a correct ``<None>`` is a hit) and 0 otherwise;
* a box where the ground truth is ``<None>`` has overlap 0 (a wrong box is a miss), and so has a
  ``<None>`` where the ground truth holds a box;
* every slot scores like a single box, ``R_i * g(IoU_i)``, and the answer scores the sum divided
  by ``max(#ground-truth slots, #predicted slots)``: missing frames and frames beyond the ground
  truth's score zero, so neither dropping nor padding frames pays;
* several trajectories ("the trajectory of the first people are: ...") are paired by order, the
  order the prompt fixed; ``matching="set"`` (a ``reward_matching`` dataset column) instead pairs
  boxes one-to-one by the best total IoU (Hungarian), for answers whose order is free, such as
  the boxes of all objects in the first frame;
* a single-box answer is the one-slot case, so it gets exactly the paper's value.

Grammar. Set 1 is the grammar the ``solution`` is written in: OmniPT's ``<bbox>`` by default, or
Qwen's ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>`` when the data was built with ``grammar=qwen``;
in that case ``<bbox>`` answers count as another form (set 2).

VPTracker's JSON answer (``"visible"`` + ``"bbox"``, corners) is one slot: a JSON ``bbox`` is the
exact form (2), a box in another form 0.6, bare numbers 0.4; ``"visible": "no"`` with the ground
truth invisible is a hit, a visibility mistake a miss.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from vptracker.boxes import (
    Form,
    ParsedBox,
    iou_xyxy,
    parse_box,
    parse_qwen_boxes,
    parse_trajectories,
    parse_vptracker,
)

FORM_SCORE = {Form.EXACT: 2.0, Form.NONE: 2.0, Form.OTHER: 0.6, Form.UNTAGGED: 0.4, Form.NO_BOX: 0.0}
MATCHINGS = ("order", "set")


def stage1_map(iou: float) -> float:
    """Stage 1 maps IoU to 0.5-1 so that the format dominates (paper, Eq. 2)."""
    return iou / 2 + 0.5


def stage4_map(iou: float) -> float:
    """Stage 4 removes the mapping: the reward is the format score times IoU."""
    return iou


# Pieces of an answer that hold at most one box each, in the order written; ``parse_box`` reads
# each one, so this only splits the text and never decides a box's meaning.
_N = r"[-+]?[\d.]{1,20}"
_SLOT = re.compile(
    r"<bbox>.{0,200}?</bbox>|<None>|<\|box_start\|>.{0,200}?<\|box_end\|>"
    rf"|\(\s*{_N}\s*,\s*{_N}\s*\)\s*,?\s*\(\s*{_N}\s*,\s*{_N}\s*\)"  # (x1,y1),(x2,y2)
    r"|\[[^\[\]]{1,120}\]|\([^()]{1,120}\)"
    rf"|{_N}\s*,\s*{_N}\s*,\s*{_N}\s*,\s*{_N}", re.DOTALL)


def split_slots(text: str) -> list[ParsedBox]:
    """Every box or ``<None>`` in ``text``, in order, whatever form each is written in."""
    if not isinstance(text, str):
        return []
    slots = [parse_box(m.group(0)) for m in _SLOT.finditer(text)]
    return [s for s in slots if s.form != Form.NO_BOX]


def _slot_overlap(pred: ParsedBox | None, truth: ParsedBox | None) -> float:
    """Overlap of one slot: IoU of two boxes, 1 for a correct ``<None>``, 0 for any mistake."""
    if pred is None or truth is None or pred.form == Form.NO_BOX:
        return 0.0
    if truth.box is None:
        return 1.0 if pred.form == Form.NONE else 0.0
    if pred.box is None:
        return 0.0
    return iou_xyxy(pred.box, truth.box)


def _slot_score(pred: ParsedBox | None, truth: ParsedBox | None, mapping: Callable[[float], float]) -> float:
    if pred is None or truth is None:  # a missing slot, or one beyond the ground truth's frames
        return 0.0
    return FORM_SCORE[pred.form] * mapping(_slot_overlap(pred, truth))


def _ordered(pred: Sequence[ParsedBox], truth: Sequence[ParsedBox], mapping) -> tuple[float, int]:
    n = max(len(pred), len(truth))
    total = sum(_slot_score(pred[i] if i < len(pred) else None, truth[i] if i < len(truth) else None, mapping)
                for i in range(n))
    return total, n


def _matched(pred: Sequence[ParsedBox], truth: Sequence[ParsedBox], mapping) -> tuple[float, int]:
    """Best one-to-one pairing by total slot score; unpaired slots score zero."""
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    n = max(len(pred), len(truth))
    if not pred or not truth:
        return 0.0, n
    gain = np.array([[_slot_score(p, t, mapping) for t in truth] for p in pred])
    rows, cols = linear_sum_assignment(gain, maximize=True)
    return float(gain[rows, cols].sum()), n


def _trajectories(text: str) -> list[list[ParsedBox]]:
    """Slots per trajectory; untagged answers without trajectory headings become one trajectory."""
    trajs = parse_trajectories(text)
    if len(trajs) <= 1:  # one trajectory: read every slot, whatever form each is written in
        slots = split_slots(text)
        return [slots] if slots else []
    return trajs


_BBOX_TOKEN = re.compile(r"<bbox>.{0,200}?</bbox>", re.DOTALL)
_QWEN_TOKEN = re.compile(r"<\|box_start\|>.{0,200}?<\|box_end\|>", re.DOTALL)


def _qwen_as_set1(text: str) -> str:
    """Rewrites an answer so that the Qwen grammar reads as set 1 and ``<bbox>`` as set 2.

    Well-formed Qwen tokens become ``<bbox>x,y,w,h</bbox>``; ``<bbox>`` tokens become corner pairs
    ``(x1,y1),(x2,y2)``, another form. Malformed tokens are left as they are.
    """
    def bbox_to_other(m: re.Match) -> str:
        parsed = parse_box(m.group(0))
        if parsed.form != Form.EXACT:
            return m.group(0)
        x1, y1, x2, y2 = parsed.box
        return f"({x1!r},{y1!r}),({x2!r},{y2!r})"

    def qwen_to_exact(m: re.Match) -> str:
        boxes = parse_qwen_boxes(m.group(0))
        if not boxes:
            return m.group(0)
        x1, y1, x2, y2 = boxes[0]
        return f"<bbox>{x1!r},{y1!r},{x2 - x1!r},{y2 - y1!r}</bbox>"

    return _QWEN_TOKEN.sub(qwen_to_exact, _BBOX_TOKEN.sub(bbox_to_other, text))


def _is_vptracker(solution: str) -> bool:
    return isinstance(solution, str) and parse_vptracker(solution).visible is not None


def _vptracker_reward(completion: str, solution: str, mapping) -> float:
    truth = parse_vptracker(solution)
    pred = parse_vptracker(completion)
    form, box = pred.form, pred.box
    if form == Form.NO_BOX:  # bare numbers without JSON or brackets: set 3
        bare = parse_box(completion)
        form, box = (Form.UNTAGGED, bare.box) if bare.form == Form.UNTAGGED else (Form.NO_BOX, None)
    pred_visible = pred.visible if pred.visible is not None else (box is not None and box[2] > box[0])
    if truth.visible:
        overlap = iou_xyxy(box, truth.box) if (pred_visible and box is not None and truth.box) else 0.0
    else:
        overlap = 0.0 if pred_visible else 1.0
    return FORM_SCORE[form] * mapping(overlap)


def box_reward(completion: str, solution: str, mapping: Callable[[float], float],
               matching: str = "order") -> float:
    """Format score times ``mapping(IoU)``, aggregated over frames as the module docstring says."""
    if matching not in MATCHINGS:
        raise ValueError(f"reward matching {matching!r}: expected one of {MATCHINGS}")
    if not isinstance(completion, str) or not isinstance(solution, str):
        return 0.0
    if _is_vptracker(solution):
        return _vptracker_reward(completion, solution, mapping)
    if _QWEN_TOKEN.search(solution):
        completion, solution = _qwen_as_set1(completion), _qwen_as_set1(solution)
    truth = _trajectories(solution)
    if not truth:
        raise ValueError(f"reward solution holds no box and no <None>: {solution[:120]!r}")
    pred = _trajectories(completion)
    if matching == "set":
        flat_pred = [s for t in pred for s in t]
        flat_truth = [s for t in truth for s in t]
        total, n = _matched(flat_pred, flat_truth, mapping)
        return total / n
    total, n = 0.0, 0
    for i in range(max(len(pred), len(truth))):
        if i < len(truth):
            t_total, t_n = _ordered(pred[i] if i < len(pred) else [], truth[i], mapping)
        else:  # an extra trajectory: its slots count against the answer
            t_total, t_n = 0.0, len(pred[i])
        total, n = total + t_total, n + t_n
    return total / n if n else 0.0


def format_reward(completion: str, solution: str, matching: str = "order") -> float:
    """Stage 1: ``R(p) * (IoU / 2 + 0.5)``."""
    return box_reward(completion, solution, stage1_map, matching)


def iou_reward(completion: str, solution: str, matching: str = "order") -> float:
    """Stage 4: ``R(p) * IoU``."""
    return box_reward(completion, solution, stage4_map, matching)


# --------------------------------------------------------------------------- ms-swift plugin

def _register() -> None:
    """Registers the ORMs when ms-swift is importable (it always is in training runs)."""
    try:
        from swift.rewards import ORM, orms
    except ImportError:  # the plain functions above stay usable without ms-swift
        return

    class _BoxORM(ORM):
        score: Callable[..., float]

        def __call__(self, completions, solution, **kwargs) -> list[float]:
            matching = kwargs.get("reward_matching") or ["order"] * len(completions)
            return [type(self).score(c, s, m or "order") for c, s, m in zip(completions, solution, matching)]

    class OmniPTFormatReward(_BoxORM):
        score = staticmethod(format_reward)

    class OmniPTIoUReward(_BoxORM):
        score = staticmethod(iou_reward)

    orms["omnipt_format"] = OmniPTFormatReward
    orms["omnipt_iou"] = OmniPTIoUReward


_register()
