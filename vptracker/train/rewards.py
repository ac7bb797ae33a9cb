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
* a single-box answer is the one-slot case, so it gets exactly the paper's value.

Several objects (the ``reward_matching`` column the GRPO builders write on every row):

* ``order`` (SOT, location prediction, MOT's "track these objects" query, whose prompt lists the
  objects in the order the answer must keep): predicted trajectory *i* pairs with true one *i*;
* ``set`` (RMOT, CRMOT, MOT's first-frame and "added midway" queries, detection: the prompt fixes
  no order): trajectories are matched one-to-one by the assignment with the highest total mean
  per-frame overlap (``scipy.optimize.linear_sum_assignment``; the overlap of a slot is its IoU,
  1 for a correct ``<None>``, 0 for a wrong one). An answer without trajectory headings is then a
  list of objects with one box each (the first-frame boxes, the detections);
* a matched pair scores slot by slot as above; every slot of an unmatched trajectory, predicted
  (an extra object) or true (a missed one), scores zero and counts in the denominator, so the
  answer scores ``sum of slot scores / total slots``: listing objects in another order changes
  nothing under ``set``, and neither missing nor inventing objects pays.

The empty answer. A solution may be "There are no objects." (no object to report). The completion
that says so (the phrase, any case, and no box) is the exact answer: ``2 * mapping(1)``, 2.0 in
both stages. Any other completion scores 0: one listing boxes (each an invented object), and one
without a box and without the phrase, an empty completion included (no answer in the grammar, as
for any answer without a box). A true answer with objects and the completion "There are no
objects." scores 0 (every object missed).

Errors. :func:`check_solution` refuses a solution with no box, no ``<None>`` and not the empty
answer; ``vptracker prepare`` runs it on every GRPO row and names the file and line. The ORMs
registered below never raise: a row they cannot score gets 0 and a logged warning.

Grammar. Set 1 is the grammar the ``solution`` is written in: OmniPT's ``<bbox>`` by default, or
Qwen's ``<|box_start|>(x1,y1),(x2,y2)<|box_end|>`` when the data was built with ``grammar=qwen``;
in that case ``<bbox>`` answers count as another form (set 2).

VPTracker's JSON answer (``"visible"`` + ``"bbox"``, corners) is one slot: a JSON ``bbox`` is the
exact form (2), a box in another form 0.6, bare numbers 0.4; ``"visible": "no"`` with the ground
truth invisible is a hit, a visibility mistake a miss.
"""
from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Sequence

from vptracker.boxes import (
    Form,
    ParsedBox,
    has_qwen_token,
    iou_xyxy,
    parse_box,
    parse_slots,
    parse_vptracker,
    swap_bbox_and_qwen,
)
from vptracker.tasks.solutions import (  # noqa: F401  (check_solution: the rewards' own check, re-exported)
    MATCHINGS,
    NO_OBJECTS,
    check_solution,
    is_vptracker_answer,
    says_no_objects,
    solution_trajectories,
)

logger = logging.getLogger(__name__)

FORM_SCORE = {Form.EXACT: 2.0, Form.NONE: 2.0, Form.OTHER: 0.6, Form.UNTAGGED: 0.4, Form.NO_BOX: 0.0}


def stage1_map(iou: float) -> float:
    """Stage 1 maps IoU to 0.5-1 so that the format dominates (paper, Eq. 2)."""
    return iou / 2 + 0.5


def stage4_map(iou: float) -> float:
    """Stage 4 removes the mapping: the reward is the format score times IoU."""
    return iou


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


def _pair_score(pred: Sequence[ParsedBox], truth: Sequence[ParsedBox], mapping) -> tuple[float, int]:
    """Summed slot scores of one predicted trajectory against one true one, frame by frame, and
    the number of slots they count for (the longer of the two)."""
    n = max(len(pred), len(truth))
    total = sum(_slot_score(pred[i] if i < len(pred) else None, truth[i] if i < len(truth) else None, mapping)
                for i in range(n))
    return total, n


def _mean_overlap(pred: Sequence[ParsedBox], truth: Sequence[ParsedBox]) -> float:
    """Mean per-frame overlap (IoU; 1 for a correct ``<None>``) over the longer trajectory."""
    n = max(len(pred), len(truth))
    return sum(_slot_overlap(pred[i] if i < len(pred) else None, truth[i] if i < len(truth) else None)
               for i in range(n)) / n if n else 0.0


def assign(pred: Sequence[Sequence[ParsedBox]], truth: Sequence[Sequence[ParsedBox]],
           matching: str) -> list[tuple[int, int]]:
    """``(pred, truth)`` index pairs: by position (``order``), or the assignment with the highest
    total mean per-frame overlap (``set``, Hungarian). Left-out trajectories are unmatched."""
    if matching == "order" or not pred or not truth:
        return [(i, i) for i in range(min(len(pred), len(truth)))]
    import numpy as np
    from scipy.optimize import linear_sum_assignment

    overlap = np.array([[_mean_overlap(p, t) for t in truth] for p in pred])
    rows, cols = linear_sum_assignment(overlap, maximize=True)
    return list(zip(rows.tolist(), cols.tolist()))


def _score_trajectories(pred, truth, mapping, matching: str) -> float:
    """Matched pairs score slot by slot; every slot of an unmatched trajectory is a miss."""
    pairs = assign(pred, truth, matching)
    total, n = 0.0, 0
    for i, j in pairs:
        t_total, t_n = _pair_score(pred[i], truth[j], mapping)
        total, n = total + t_total, n + t_n
    matched_pred, matched_truth = {i for i, _ in pairs}, {j for _, j in pairs}
    n += sum(len(p) for i, p in enumerate(pred) if i not in matched_pred)
    n += sum(len(t) for j, t in enumerate(truth) if j not in matched_truth)
    return total / n if n else 0.0





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
    """Format score times ``mapping(IoU)``, aggregated over frames and objects as the module
    docstring says. Raises ``ValueError`` for a solution :func:`check_solution` refuses."""
    check_solution(solution, matching)
    if not isinstance(completion, str):
        return 0.0
    if is_vptracker_answer(solution):
        return _vptracker_reward(completion, solution, mapping)
    if says_no_objects(solution):  # nothing to find: only the empty answer itself is right
        hit = NO_OBJECTS.lower() in completion.lower() and not parse_slots(completion)
        return FORM_SCORE[Form.EXACT] * mapping(1.0) if hit else 0.0
    if has_qwen_token(solution):
        completion, solution = swap_bbox_and_qwen(completion), swap_bbox_and_qwen(solution)
    return _score_trajectories(solution_trajectories(completion, matching), solution_trajectories(solution, matching),
                               mapping, matching)


def format_reward(completion: str, solution: str, matching: str = "order") -> float:
    """Stage 1: ``R(p) * (IoU / 2 + 0.5)``."""
    return box_reward(completion, solution, stage1_map, matching)


def iou_reward(completion: str, solution: str, matching: str = "order") -> float:
    """Stage 4: ``R(p) * IoU``."""
    return box_reward(completion, solution, stage4_map, matching)


# --------------------------------------------------------------------------- ms-swift plugin

def register() -> None:
    """Registers the ORMs ``omnipt_format`` and ``omnipt_iou`` with ms-swift (idempotent)."""
    from swift.rewards import ORM, orms

    class _BoxORM(ORM):
        """Scores a batch; never raises (ms-swift does not catch reward errors: one bad row would
        end the run). A row it cannot score gets 0 and a warning naming it and counting so far."""

        score: Callable[..., float]
        refused = 0

        def __call__(self, completions, solution, **kwargs) -> list[float]:
            matching = kwargs.get("reward_matching") or [None] * len(completions)
            return [self._one(c, s, m or "order") for c, s, m in zip(completions, solution, matching)]

        def _one(self, completion, solution, matching) -> float:
            try:
                return float(type(self).score(completion, solution, matching))
            except Exception as err:  # noqa: BLE001  (any failure scores 0, loudly)
                type(self).refused += 1
                logger.warning("%s: row scored 0 (%d so far): %s", type(self).__name__, type(self).refused, err)
                return 0.0

    class OmniPTFormatReward(_BoxORM):
        score = staticmethod(format_reward)

    class OmniPTIoUReward(_BoxORM):
        score = staticmethod(iou_reward)

    orms["omnipt_format"] = OmniPTFormatReward
    orms["omnipt_iou"] = OmniPTIoUReward


# Loaded by swift (``--external_plugins``), swift is already imported: register. Imported by
# ``vptracker prepare`` for :func:`check_solution`, do not pay swift's import (seconds per worker).
if "swift" in sys.modules:
    register()
