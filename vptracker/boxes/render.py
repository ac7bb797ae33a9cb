"""Answer renderers: OmniPT ``<bbox>x,y,w,h</bbox>`` / ``<None>`` (boxes, trajectories, several
trajectories), Qwen ``<|box_start|>`` corners, VPTracker's fenced JSON and the plain list.

Part of :mod:`vptracker.boxes` (import from there). Renderers take boxes already in model scale
(:class:`~vptracker.boxes.coords.CoordMap`); :mod:`vptracker.boxes.parse` reads what they write.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np

# Box grammars an OmniPT answer (or a prompt's box reference) can be rendered in: OmniPT's own
# <bbox>x,y,w,h</bbox>, or Qwen's native grounding tokens (what the base model was pre-trained on).
GRAMMARS = ("bbox", "qwen")


def _num(v: float, decimals: int) -> str:
    if decimals == 0:
        return str(int(round(v)))  # noqa: RUF046  (round() of a numpy float stays a float)
    return f"{v:.{decimals}f}"


def render_bbox(model_xyxy: Sequence[float], decimals: int = 0) -> str:
    """OmniPT ``<bbox>x,y,w,h</bbox>`` from a box already in model scale (x1,y1,x2,y2).

    Corners are rounded first and w, h derived from them, so ``x + w`` is the rounded ``x2``.
    """
    x1, y1, x2, y2 = (round(float(v), decimals) for v in model_xyxy)
    vals = (x1, y1, x2 - x1, y2 - y1)
    return _bbox_token(_num(v, decimals) for v in vals)


def _bbox_token(values: Iterable[str]) -> str:
    """The one place ``<bbox>`` is written from text (``_SLOT`` formats integers the same way for
    :func:`render_trajectory_array`): x,y,w,h already formatted as text."""
    return "<bbox>" + ",".join(values) + "</bbox>"


NONE_TOKEN = "<None>"


def check_grammar(grammar: str) -> str:
    if grammar not in GRAMMARS:
        raise ValueError(f"unknown box grammar {grammar!r}; expected one of {GRAMMARS}")
    return grammar


def render_box(model_xyxy: Sequence[float], decimals: int = 0, grammar: str = "bbox") -> str:
    """One box in the chosen grammar: ``bbox`` (OmniPT) or ``qwen`` (``<|box_start|>`` corners)."""
    if check_grammar(grammar) == "qwen":
        return render_qwen_box(model_xyxy, decimals)
    return render_bbox(model_xyxy, decimals)


def render_trajectory(boxes: Iterable[Sequence[float] | None], decimals: int = 0,
                      grammar: str = "bbox") -> str:
    """One box or ``<None>`` per image, concatenated (OmniPT SOT / trajectory answer).

    ``<None>`` marks an absent object in every grammar, so trajectories stay one entry per image.
    """
    check_grammar(grammar)  # also when every entry is <None>, so a typo never passes silently
    return "".join(NONE_TOKEN if b is None else render_box(b, decimals, grammar) for b in boxes)


ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth",
            "tenth")


def ordinal(i: int) -> str:
    return ORDINALS[i] if i < len(ORDINALS) else f"{i + 1}th"


def render_trajectories(trajectories: Sequence[Sequence[Sequence[float] | None]], decimals: int = 0,
                        noun: str = "people", grammar: str = "bbox") -> str:
    """Several trajectories, in the wording of the paper's Fig. 4."""
    check_grammar(grammar)
    return join_trajectories([render_trajectory(t, decimals, grammar) for t in trajectories], noun)


def join_trajectories(texts: Sequence[str], noun: str = "people") -> str:
    """:func:`render_trajectories` from trajectories already rendered (:func:`render_trajectory`)."""
    text = ", ".join(f"the trajectory of the {ordinal(i)} {noun} are: {t}" for i, t in enumerate(texts))
    return text[:1].upper() + text[1:] if text else NONE_TOKEN


def render_trajectory_array(model_xyxy: np.ndarray, present: np.ndarray, decimals: int = 0,
                            grammar: str = "bbox") -> list[str]:
    """:func:`render_trajectory` of ``k`` trajectories given as arrays, the same texts: boxes
    ``(k, F, 4)`` in model scale and ``present`` ``(k, F)`` (``<None>`` where False, whatever the box
    holds). For answers of hundreds of boxes: whole-number scales round the array at once
    (``np.rint`` rounds the exact value half to even, as ``round`` does) and fill one format string
    per trajectory; other scales (and non-finite boxes, which :func:`render_box` refuses) go box by box.
    """
    check_grammar(grammar)
    present = np.asarray(present, dtype=bool)
    boxes = np.asarray(model_xyxy, dtype=np.float64)[present]          # (m, 4), trajectory after trajectory
    if decimals != 0 or not np.isfinite(boxes).all():
        texts = iter([render_box(b, decimals, grammar) for b in boxes.tolist()])
        return ["".join(next(texts) if p else NONE_TOKEN for p in row) for row in present.tolist()]
    values = np.rint(boxes).astype(np.int64)
    if grammar == "bbox":
        values[:, 2:] -= values[:, :2]   # w, h from the rounded corners, as render_bbox does
    values = values.ravel().tolist()
    out, start = [], 0
    for row in present.tolist():
        row = tuple(row)
        end = start + 4 * sum(row)
        out.append(_slots(row, grammar) % tuple(values[start:end]))
        start = end
    return out


_SLOT = {"bbox": "<bbox>%d,%d,%d,%d</bbox>", "qwen": "<|box_start|>(%d,%d),(%d,%d)<|box_end|>"}


@lru_cache(maxsize=4096)
def _slots(present: tuple[bool, ...], grammar: str) -> str:
    """The format string of one trajectory: a box's slots where present, ``<None>`` elsewhere."""
    return "".join(_SLOT[grammar] if p else NONE_TOKEN for p in present)


def render_vptracker(model_xyxy: Sequence[float] | None, decimals: int = 0) -> str:
    """VPTracker's fenced JSON answer; ``None`` means the target is not visible."""
    if model_xyxy is None:
        visible, coords = "no", "[0, 0, 0, 0]"
    else:
        visible = "yes"
        coords = "[" + ", ".join(_num(v, decimals) for v in model_xyxy) + "]"
    return f'```json\n{{\n  "visible": "{visible}",\n  "bbox": {coords}\n}}\n```'


def render_vptracker_released(box: Sequence[int] | None, visible: bool, outline_note: bool = True) -> str:
    """The released sampler's answer: the box as Python writes the list (``[12, 34, 56, 78]``).

    With the visual prompt the ``"bbox"`` line has one leading space, without it two, as released
    (``dataset/sampling_dataset.py``); an absent target still carries its annotated box.
    """
    coords = "[" + ", ".join(repr(v) for v in box) + "]"
    pad = " " if outline_note else "  "
    return f'```json\n{{\n  "visible": "{"yes" if visible else "no"}",\n{pad}"bbox": {coords}\n}}\n```'


def render_qwen_box(model_xyxy: Sequence[float], decimals: int = 0) -> str:
    x1, y1, x2, y2 = (_num(v, decimals) for v in model_xyxy)
    return f"<|box_start|>({x1},{y1}),({x2},{y2})<|box_end|>"


def render_list(model_xyxy: Sequence[float], decimals: int = 0) -> str:
    return "[" + ", ".join(_num(v, decimals) for v in model_xyxy) + "]"

