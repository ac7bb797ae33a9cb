"""What a GRPO row's ``solution`` must be: an answer the rewards (:mod:`vptracker.train.rewards`) can score.

``vptracker prepare`` refuses a row whose solution fails :func:`check_solution` (ms-swift does not catch
a reward's error: one such row would end a training run), and the rewards read solutions with the
same functions, so the two cannot disagree.
"""
from __future__ import annotations

from vptracker.boxes import (
    ParsedBox,
    has_qwen_token,
    parse_slots,
    parse_trajectory,
    parse_vptracker,
    swap_bbox_and_qwen,
    trajectory_texts,
)
from vptracker.prompts.texts import no_objects_answer

NO_OBJECTS = no_objects_answer()
MATCHINGS = ("order", "set")


def solution_trajectories(text: str, matching: str = "order") -> list[list[ParsedBox]]:
    """Slots per trajectory. Without trajectory headings an answer is one trajectory (``order``:
    one slot per frame, whatever form each is written in) or, for ``set``, a list of objects with
    one slot each (the first-frame boxes of MOT, the boxes of detection)."""
    pieces = trajectory_texts(text)
    if not pieces:
        slots = parse_slots(text)
        if matching == "set":
            return [[s] for s in slots]
        return [slots] if slots else []
    if len(pieces) == 1:  # one heading: read every slot after it, whatever form each is written in
        return [parse_slots(pieces[0])]
    return [parse_trajectory(piece) for piece in pieces]


def says_no_objects(text: str) -> bool:
    """``text`` is the empty answer ("There are no objects."), ignoring case and outer spaces."""
    return isinstance(text, str) and text.strip().lower() == NO_OBJECTS.lower()


def is_vptracker_answer(solution: str) -> bool:
    return isinstance(solution, str) and parse_vptracker(solution).visible is not None


def check_solution(solution, matching: str = "order") -> None:
    """Raises ``ValueError`` unless ``solution`` is an answer the rewards can score: a VPTracker JSON
    answer, at least one box or ``<None>``, or the empty answer; ``matching`` one of ``MATCHINGS``.
    ``vptracker prepare`` calls it for every GRPO row it writes (see ``tasks.base.write_jsonl``)."""
    if matching not in MATCHINGS:
        raise ValueError(f"reward matching {matching!r}: expected one of {MATCHINGS}")
    if not isinstance(solution, str):
        # ValueError like every other refusal: prepare reports them all the same way
        raise ValueError(f"reward solution must be text, got {type(solution).__name__}")  # noqa: TRY004
    if is_vptracker_answer(solution) or says_no_objects(solution):
        return
    if has_qwen_token(solution):  # Qwen grammar is set 1: read it as the exact form
        solution = swap_bbox_and_qwen(solution)
    if not solution_trajectories(solution, matching):
        raise ValueError(f"reward solution holds no box, no <None> and is not {NO_OBJECTS!r}: {solution[:120]!r}")
